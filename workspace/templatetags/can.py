"""`{% may "rule" %}…{% else %}…{% endmay %}`: show a link or a button only to the users who may use
it, by the rules in workspace.can (the same predicates the views check)."""

from django import template

from workspace import can

register = template.Library()


class MayNode(template.Node):
    def __init__(self, rule: str, nodelist_true: template.NodeList, nodelist_false: template.NodeList):
        self.rule = rule
        self.nodelist_true = nodelist_true
        self.nodelist_false = nodelist_false

    def render(self, context: template.Context) -> str:
        request = context.get("request")
        user = getattr(request, "user", None) or context.get("user")
        allowed = can.may(user, self.rule)
        return (self.nodelist_true if allowed else self.nodelist_false).render(context)


@register.tag
def may(parser: template.base.Parser, token: template.base.Token) -> MayNode:
    bits = token.split_contents()
    if len(bits) != 2 or bits[1][0] not in "\"'" or bits[1][-1] != bits[1][0]:
        raise template.TemplateSyntaxError('Usage: {% may "rule" %}…{% else %}…{% endmay %}')
    rule = bits[1][1:-1]
    # A literal name checked here: a typo fails when the template compiles, for every user.
    if rule not in can.RULES:
        raise template.TemplateSyntaxError(f"{{% may %}}: no rule {rule!r} in workspace.can.RULES")
    nodelist_true = parser.parse(("else", "endmay"))
    nodelist_false = template.NodeList()
    if parser.next_token().contents == "else":
        nodelist_false = parser.parse(("endmay",))
        parser.delete_first_token()
    return MayNode(rule, nodelist_true, nodelist_false)
