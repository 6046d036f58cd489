/*! cdp.js - the cdp-crm tracking library. Hand-written, no dependencies. */
/*
 * Sends Segment-spec messages (page, track, identify, alias, group) to <host>/v1/b in batches.
 *
 * - The pasted snippet makes `window.cdp` an array-like stub that records calls; this file
 *   replays them in order once it has loaded, and then answers calls directly.
 * - Identity: a first-party `ajs_anonymous_id` cookie (1 year, SameSite=Lax, path=/) mirrored in
 *   localStorage, so either one restores the other; `ajs_user_id` likewise.
 * - Delivery: every message goes first into a localStorage queue and leaves it only when the
 *   server answered 2xx (or a 4xx other than 408/429, which retrying cannot fix). Failures back
 *   off exponentially; the queue survives reloads and offline periods. The server deduplicates
 *   on messageId, so a batch sent twice (two tabs, a keepalive send during unload) is stored once.
 * - Bodies go as text/plain: a CORS "simple request", so there is no preflight round trip.
 * - Consent: with {consent: "required"} nothing is stored or sent until cdp.consent(true) or
 *   cdp.consent({category: true|false, ...}); an object with no true category is a refusal.
 *   Messages carry the choice as Segment does, context.consent.categoryPreferences (the object
 *   given; a bare consent(true) keeps the categories given before, else {}), and context.gpc
 *   when the browser sends Global Privacy Control.
 * - GPC, with {respectGPC: true}: when navigator.globalPrivacyControl === true the visitor has
 *   refused, and only a consent grant made during a user action (navigator.userActivation.isActive,
 *   e.g. inside a click handler of the site's banner) lifts that: a grant called on page load or
 *   replayed from the snippet is ignored, and so is a stored grant that was not made that way.
 *   Browsers without navigator.userActivation accept the grant as called.
 */
(function (window, document) {
  "use strict";

  var VERSION = "1.0.0";
  var stub = window.cdp;
  if (stub && stub.initialized) return; // the library was included twice

  var nav = window.navigator || {};
  var FLUSH_MS = 1000; // how long calls gather before a batch goes out
  var MAX_BATCH = 50; // messages per request
  // Bytes per request: below the browsers' 64 KB budget for keepalive requests, so any batch can
  // also be sent while the page unloads.
  var MAX_BATCH_BYTES = 60000;
  var MAX_EVENT_BYTES = 32000; // the server rejects bigger messages; retrying them is pointless
  var MAX_QUEUE = 1000; // oldest messages are dropped past this
  var MAX_PENDING = 100; // messages held in memory while consent is pending
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 60000;
  var RETRY_AFTER_MAX_MS = 300000;
  // The server deduplicates for 7 days; a message queued longer than that could be stored twice.
  var MAX_AGE_MS = 6 * 24 * 3600 * 1000;
  var YEAR_S = 31536000;
  var ANON = "ajs_anonymous_id";
  var USER = "ajs_user_id";
  var TRAITS = "ajs_user_traits";
  var GROUP = "ajs_group_id";
  var CONSENT = "cdp_consent";

  // ---- storage: localStorage when it works (private modes, quotas), memory otherwise

  var memory = {};
  function lsGet(key) {
    try {
      var value = window.localStorage.getItem(key);
      return value === null ? undefined : value;
    } catch (e) {
      return memory[key];
    }
  }
  function lsSet(key, value) {
    memory[key] = value;
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {}
  }
  function lsRemove(key) {
    delete memory[key];
    try {
      window.localStorage.removeItem(key);
    } catch (e) {}
  }
  function cookieGet(name) {
    var parts = ("; " + document.cookie).split("; " + name + "=");
    if (parts.length < 2) return undefined;
    try {
      return decodeURIComponent(parts.pop().split(";")[0]);
    } catch (e) {
      return undefined;
    }
  }
  function cookieSet(name, value, maxAge) {
    var cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + maxAge + "; SameSite=Lax";
    if (options.cookieDomain) cookie += "; domain=" + options.cookieDomain;
    if (window.location.protocol === "https:") cookie += "; Secure";
    document.cookie = cookie;
  }
  function jsonGet(key, fallback) {
    try {
      var value = JSON.parse(lsGet(key) || "null");
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  // ---- helpers

  function uuid() {
    var c = window.crypto;
    if (c && c.randomUUID) {
      try {
        return c.randomUUID(); // secure contexts only
      } catch (e) {}
    }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var hex = "";
    for (var j = 0; j < 16; j++) hex += (b[j] + 256).toString(16).slice(1);
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }
  function isObject(value) {
    return value !== null && typeof value === "object" && !(value instanceof Array);
  }
  function assign(target) {
    for (var i = 1; i < arguments.length; i++) {
      var source = arguments[i];
      if (isObject(source)) for (var key in source) if (Object.prototype.hasOwnProperty.call(source, key)) target[key] = source[key];
    }
    return target;
  }
  function now() {
    return new Date().getTime();
  }
  function warn(message) {
    if (window.console && console.warn) console.warn("cdp.js: " + message);
  }

  // ---- page context, campaign

  function pageInfo() {
    var loc = window.location;
    var canonical = document.querySelector && document.querySelector("link[rel='canonical']");
    var href = canonical && canonical.getAttribute("href");
    return {
      path: loc.pathname,
      referrer: document.referrer,
      search: loc.search,
      title: document.title,
      url: href && href.indexOf("http") === 0 ? href : loc.href.split("#")[0]
    };
  }
  function campaign() {
    var result = {};
    var names = { utm_source: "source", utm_medium: "medium", utm_campaign: "name", utm_term: "term", utm_content: "content" };
    var pairs = window.location.search.replace(/^\?/, "").split("&");
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i].split("=");
      var name = names[pair[0]];
      if (name && pair[1] !== undefined) {
        try {
          result[name] = decodeURIComponent(pair[1].replace(/\+/g, " "));
        } catch (e) {}
      }
    }
    return result;
  }
  function context() {
    var ctx = {
      library: { name: "cdp.js", version: VERSION },
      page: pageInfo(),
      userAgent: nav.userAgent,
      locale: nav.language || nav.userLanguage
    };
    try {
      ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {}
    var utm = campaign();
    for (var key in utm) {
      ctx.campaign = utm;
      break;
    }
    if (window.screen) ctx.screen = { width: window.screen.width, height: window.screen.height };
    if (categories) ctx.consent = { categoryPreferences: assign({}, categories) };
    if (nav.globalPrivacyControl === true) ctx.gpc = true;
    return ctx;
  }

  // ---- state

  var options = {};
  var writeKey = null;
  var host = "";
  var consent = "granted"; // "granted" | "pending" | "denied"
  var categories = null; // categoryPreferences once consent was given
  var anonymousId = null;
  var userId = null;
  var traits = {};
  var groupId = null;
  var pending = []; // messages made while consent is pending: memory only
  var buffered = []; // calls made before load()
  var readyCallbacks = [];
  var loaded = false;

  function persistIdentity() {
    if (consent !== "granted") return;
    lsSet(ANON, anonymousId);
    cookieSet(ANON, anonymousId, YEAR_S);
    if (userId) {
      lsSet(USER, userId);
      cookieSet(USER, userId, YEAR_S);
    } else {
      lsRemove(USER);
      cookieSet(USER, "", 0);
    }
    lsSet(TRAITS, JSON.stringify(traits));
    if (groupId) lsSet(GROUP, groupId);
    else lsRemove(GROUP);
  }
  function forgetIdentity() {
    lsRemove(ANON);
    lsRemove(USER);
    lsRemove(TRAITS);
    lsRemove(GROUP);
    cookieSet(ANON, "", 0);
    cookieSet(USER, "", 0);
  }
  function restoreIdentity() {
    // The cookie wins (it is what the server side of the site sees); localStorage restores an
    // expired or cleared cookie.
    anonymousId = cookieGet(ANON) || lsGet(ANON) || uuid();
    userId = cookieGet(USER) || lsGet(USER) || null;
    traits = jsonGet(TRAITS, {});
    groupId = lsGet(GROUP) || null;
    persistIdentity();
  }

  // ---- the retry queue

  var queueKey = "";
  var stateKey = "";
  var timer = null;
  var inFlight = false;

  function readQueue() {
    var queue = jsonGet(queueKey, []);
    return queue instanceof Array ? queue : [];
  }
  function writeQueue(queue) {
    if (queue.length > MAX_QUEUE) queue = queue.slice(queue.length - MAX_QUEUE);
    if (queue.length) lsSet(queueKey, JSON.stringify(queue));
    else lsRemove(queueKey);
  }
  function backoff() {
    return jsonGet(stateKey, { attempts: 0, next: 0 });
  }
  function setBackoff(state) {
    if (state.attempts) lsSet(stateKey, JSON.stringify(state));
    else lsRemove(stateKey);
  }
  function enqueue(message) {
    var size = JSON.stringify(message).length;
    if (size > MAX_EVENT_BYTES) {
      warn("dropped a " + message.type + " message of " + size + " bytes (the limit is " + MAX_EVENT_BYTES + ")");
      return;
    }
    if (consent === "pending") {
      if (pending.length < MAX_PENDING) pending.push(message);
      return;
    }
    if (consent !== "granted") return;
    var queue = readQueue();
    queue.push({ m: message, t: now() });
    writeQueue(queue);
    schedule(queue.length >= MAX_BATCH ? 0 : FLUSH_MS);
  }
  function schedule(delay) {
    if (timer !== null) {
      if (delay > 0) return;
      clearTimeout(timer);
    }
    timer = setTimeout(function () {
      timer = null;
      flush();
    }, delay);
  }
  function takeBatch(queue) {
    var batch = [];
    var bytes = 100;
    var cutoff = now() - MAX_AGE_MS;
    for (var i = 0; i < queue.length && batch.length < MAX_BATCH; i++) {
      if (!(queue[i].t >= cutoff)) continue;
      var message = queue[i].m;
      var size = JSON.stringify(message).length + 1;
      if (batch.length && bytes + size > MAX_BATCH_BYTES) break;
      bytes += size;
      batch.push(message);
    }
    return batch;
  }
  function dropFromQueue(batch) {
    var sent = {};
    for (var i = 0; i < batch.length; i++) sent[batch[i].messageId] = true;
    // Re-read: another tab, or this one, may have added messages meanwhile.
    var cutoff = now() - MAX_AGE_MS;
    var queue = readQueue();
    var kept = [];
    for (var j = 0; j < queue.length; j++) {
      var item = queue[j];
      if (item && item.m && !sent[item.m.messageId] && item.t >= cutoff) kept.push(item);
    }
    writeQueue(kept);
    return kept;
  }
  function body(batch) {
    return JSON.stringify({ batch: batch, writeKey: writeKey, sentAt: new Date().toISOString() });
  }
  function failed(retryAfterMs) {
    var state = backoff();
    state.attempts += 1;
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, state.attempts - 1));
    delay = delay * (0.9 + Math.random() * 0.2); // jitter: tabs and visitors do not retry in step
    if (retryAfterMs) delay = Math.min(RETRY_AFTER_MAX_MS, Math.max(delay, retryAfterMs));
    state.next = now() + delay;
    setBackoff(state);
    schedule(delay);
  }
  function flush() {
    if (!loaded || inFlight || consent !== "granted") return;
    var queue = readQueue();
    if (!queue.length) return;
    if (nav.onLine === false) return; // the "online" event flushes
    var wait = backoff().next - now();
    if (wait > 0) {
      schedule(Math.min(wait, BACKOFF_MAX_MS));
      return;
    }
    var batch = takeBatch(queue);
    if (!batch.length) {
      dropFromQueue([]); // only expired messages were left
      return;
    }
    if (!window.fetch) {
      beacon(batch);
      return;
    }
    inFlight = true;
    window
      .fetch(host + "/v1/b", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: body(batch),
        credentials: "omit",
        keepalive: true
      })
      .then(
        function (response) {
          inFlight = false;
          var status = response.status;
          if (status >= 200 && status < 300) {
            setBackoff({ attempts: 0, next: 0 });
            if (dropFromQueue(batch).length) schedule(0);
          } else if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
            // The server will never accept these (bad key, disallowed origin): keep the queue moving.
            warn("the server refused " + batch.length + " messages with status " + status);
            dropFromQueue(batch);
            setBackoff({ attempts: 0, next: 0 });
            schedule(0);
          } else {
            var retryAfter = parseFloat(response.headers.get("Retry-After") || "0");
            failed(isNaN(retryAfter) ? 0 : retryAfter * 1000);
          }
        },
        function () {
          inFlight = false; // offline, refused, or a CORS failure
          failed(0);
        }
      );
  }
  function beacon(batch) {
    // Without fetch: sendBeacon cannot report the outcome, so the messages stay queued and are
    // sent again later; the server's deduplication stores them once.
    if (nav.sendBeacon) {
      try {
        nav.sendBeacon(host + "/v1/b", new Blob([body(batch)], { type: "text/plain" }));
      } catch (e) {}
    }
  }
  function flushOnHide() {
    // The page may be going away: hand what is queued to the browser, which finishes keepalive
    // requests after unload. The messages stay queued until an answer arrives, so a page that
    // really closes re-sends them on the next visit (deduplicated by messageId).
    if (!loaded || consent !== "granted" || inFlight) return;
    // Backing off (the server failed or asked to wait): the next visit retries instead.
    if (backoff().next > now()) return;
    var batch = takeBatch(readQueue());
    if (!batch.length) return;
    if (window.fetch) {
      try {
        window.fetch(host + "/v1/b", {
          method: "POST",
          headers: { "Content-Type": "text/plain" },
          body: body(batch),
          credentials: "omit",
          keepalive: true
        })["catch"](function () {});
        return;
      } catch (e) {}
    }
    beacon(batch);
  }

  // ---- messages

  function message(type, fields, opts) {
    var m = assign(
      {
        type: type,
        messageId: uuid(),
        timestamp: new Date().toISOString(),
        anonymousId: anonymousId,
        context: context(),
        integrations: {}
      },
      fields
    );
    if (userId && !m.userId) m.userId = userId;
    if (isObject(opts)) {
      if (isObject(opts.context)) m.context = assign(m.context, opts.context);
      if (isObject(opts.integrations)) m.integrations = opts.integrations;
      if (opts.timestamp) m.timestamp = new Date(opts.timestamp).toISOString();
      if (opts.anonymousId) m.anonymousId = String(opts.anonymousId);
    }
    enqueue(m);
    return api;
  }
  function lastFunction(args) {
    var last = args[args.length - 1];
    return typeof last === "function" ? last : null;
  }
  function done(callback) {
    if (callback) setTimeout(callback, 0);
    return api;
  }

  var api = stub instanceof Array || isObject(stub) ? stub : [];

  api.page = function (category, name, properties, opts) {
    if (!loaded) return buffer("page", arguments);
    var callback = lastFunction(arguments);
    // page(), page(name), page(properties), page(name, properties), page(category, name, properties)
    if (isObject(category)) {
      opts = name;
      properties = category;
      name = category = null;
    } else if (typeof name !== "string") {
      opts = properties;
      properties = name;
      name = category;
      category = null;
    }
    var props = assign(pageInfo(), isObject(properties) ? properties : {});
    var fields = { properties: props };
    if (name) fields.name = props.name = String(name);
    if (category) fields.category = props.category = String(category);
    message("page", fields, opts);
    return done(callback);
  };
  api.track = function (event, properties, opts) {
    if (!loaded) return buffer("track", arguments);
    if (typeof event !== "string" || !event) {
      warn("track() needs an event name");
      return api;
    }
    message("track", { event: event, properties: isObject(properties) ? properties : {} }, opts);
    return done(lastFunction(arguments));
  };
  api.identify = function (id, newTraits, opts) {
    if (!loaded) return buffer("identify", arguments);
    var callback = lastFunction(arguments);
    if (isObject(id)) {
      opts = newTraits;
      newTraits = id;
      id = null;
    }
    if (typeof id === "number") id = String(id);
    if (typeof id === "string" && id) {
      if (userId && userId !== id) {
        // Someone else on this browser: a new anonymous id keeps the two people apart.
        anonymousId = uuid();
        traits = {};
        groupId = null;
      }
      userId = id;
    }
    traits = assign({}, traits, isObject(newTraits) ? newTraits : {});
    persistIdentity();
    message("identify", { traits: assign({}, traits) }, opts);
    return done(callback);
  };
  api.alias = function (to, from, opts) {
    if (!loaded) return buffer("alias", arguments);
    if (isObject(from)) {
      opts = from;
      from = null;
    }
    if (to === undefined || to === null || to === "") {
      warn("alias() needs a userId");
      return api;
    }
    var previous = typeof from === "string" && from ? from : userId || anonymousId;
    message("alias", { userId: String(to), previousId: previous }, opts);
    return done(lastFunction(arguments));
  };
  api.group = function (id, groupTraits, opts) {
    if (!loaded) return buffer("group", arguments);
    if (id === undefined || id === null || id === "" || isObject(id)) {
      warn("group() needs a groupId");
      return api;
    }
    groupId = String(id);
    persistIdentity();
    message("group", { groupId: groupId, traits: isObject(groupTraits) ? groupTraits : {} }, opts);
    return done(lastFunction(arguments));
  };
  api.reset = function () {
    if (!loaded) return buffer("reset", arguments);
    anonymousId = uuid();
    userId = null;
    traits = {};
    groupId = null;
    if (consent === "granted") persistIdentity();
    return api;
  };
  function gpcRefuses() {
    return !!options.respectGPC && nav.globalPrivacyControl === true;
  }
  function userActive() {
    var activation = nav.userActivation;
    return !activation || activation.isActive === true;
  }
  function grants(choice) {
    if (choice === true) return true;
    if (!isObject(choice)) return false;
    for (var key in choice) if (choice[key] === true) return true;
    return false;
  }
  api.consent = function (choice) {
    if (!loaded) return buffer("consent", arguments);
    if (grants(choice)) {
      var active = userActive();
      if (gpcRefuses() && !active) {
        warn("consent ignored: the browser sends Global Privacy Control, so only a grant made during a user action counts");
        return api;
      }
      if (isObject(choice)) {
        categories = {};
        for (var name in choice) if (Object.prototype.hasOwnProperty.call(choice, name)) categories[name] = choice[name] === true;
      } else if (!categories) categories = {};
      consent = "granted";
      lsSet(CONSENT, JSON.stringify({ granted: true, categories: categories, userAction: active }));
      persistIdentity();
      var held = pending;
      pending = [];
      // Messages held while consent was pending were made before the choice: they carry it too.
      for (var i = 0; i < held.length; i++) {
        held[i].context.consent = { categoryPreferences: assign({}, categories) };
        enqueue(held[i]);
      }
      schedule(0);
    } else {
      // A refusal also withdraws what was kept: identifiers and anything not yet sent.
      consent = "denied";
      categories = null;
      pending = [];
      forgetIdentity();
      lsRemove(queueKey);
      lsRemove(stateKey);
      lsSet(CONSENT, "0");
    }
    return api;
  };
  api.ready = function (callback) {
    if (typeof callback !== "function") return api;
    if (loaded) setTimeout(callback, 0);
    else readyCallbacks.push(callback);
    return api;
  };
  api.user = function () {
    return { anonymousId: anonymousId, userId: userId, traits: assign({}, traits), groupId: groupId };
  };
  api.flush = function () {
    setBackoff({ attempts: 0, next: 0 });
    flush();
    return api;
  };
  api.load = function (key, opts) {
    if (loaded) return api;
    if (!key) {
      warn("load() needs a write key");
      return api;
    }
    writeKey = String(key);
    options = isObject(opts) ? opts : {};
    host = String(options.host || scriptHost || "").replace(/\/+$/, "");
    queueKey = "cdp_queue:" + writeKey;
    stateKey = "cdp_backoff:" + writeKey;
    // The stored choice: "0" (refused), "1" (granted, before categories existed) or
    // {granted, categories, userAction}.
    var stored = lsGet(CONSENT);
    var choice = stored === "1" ? { granted: true } : jsonGet(CONSENT, null);
    if (stored === "0") consent = "denied";
    else if (isObject(choice) && choice.granted) {
      consent = "granted";
      categories = isObject(choice.categories) ? choice.categories : {};
    } else if (options.consent === "required") consent = "pending";
    if (gpcRefuses() && !(isObject(choice) && choice.granted && choice.userAction === true)) {
      consent = "denied";
      categories = null;
    }
    if (consent === "granted") restoreIdentity();
    else anonymousId = uuid(); // kept in memory only until consent is granted
    loaded = true;
    if (options.page !== false) api.page();
    var calls = buffered;
    buffered = [];
    for (var i = 0; i < calls.length; i++) api[calls[i][0]].apply(api, calls[i][1]);
    for (var j = 0; j < readyCallbacks.length; j++) setTimeout(readyCallbacks[j], 0);
    readyCallbacks = [];
    schedule(readQueue().length ? 0 : FLUSH_MS);
    return api;
  };
  api.push = function (call) {
    // Calls pushed the snippet's way after the library loaded.
    if (call instanceof Array && typeof api[call[0]] === "function") api[call[0]].apply(api, call.slice(1));
  };
  function buffer(method, args) {
    buffered.push([method, Array.prototype.slice.call(args)]);
    return api;
  }

  var scriptHost = "";
  var current = document.currentScript;
  if (current && current.src) scriptHost = current.src.replace(/\/js\/cdp\.js.*$/, "");

  api.VERSION = VERSION;
  api.initialized = true;
  window.cdp = api;

  // Calls the snippet recorded before this file arrived, in order.
  var recorded = stub instanceof Array ? stub.splice(0, stub.length) : [];
  for (var k = 0; k < recorded.length; k++) api.push(recorded[k]);
  if (stub && stub._writeKey) api.load(stub._writeKey, stub._loadOptions);

  if (window.addEventListener) {
    window.addEventListener("pagehide", flushOnHide);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") flushOnHide();
    });
    window.addEventListener("online", function () {
      setBackoff({ attempts: 0, next: 0 });
      schedule(0);
    });
  }
})(window, document);
