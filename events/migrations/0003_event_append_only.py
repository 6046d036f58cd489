from django.db import migrations

# The event log is append-only: an UPDATE is a bug (or tampering), so the database refuses it.
# DELETE stays possible for retention and privacy erasure.
FORWARD = """
CREATE FUNCTION events_event_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events_event is append-only: UPDATE of event % refused', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER events_event_append_only BEFORE UPDATE ON events_event
    FOR EACH ROW EXECUTE FUNCTION events_event_refuse_update();
"""
REVERSE = """
DROP TRIGGER IF EXISTS events_event_append_only ON events_event;
DROP FUNCTION IF EXISTS events_event_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0002_event_log_and_ingest_queue")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
