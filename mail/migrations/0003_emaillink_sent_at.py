"""EmailLink.sent_at: the message's sent_at on each link, so a record's timeline pages its links in
one index ((record, -sent_at, -message)) instead of reading all of them to sort by the message.

Added nullable, filled from the messages, then made NOT NULL; the (record, message) indexes and
the records' single-column foreign-key indexes are replaced by the timeline indexes, which lead
with the record."""

from django.db import migrations, models

FILL = """
UPDATE mail_emaillink AS link SET sent_at = message.sent_at
FROM mail_emailmessage AS message
WHERE message.id = link.message_id AND link.sent_at IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0002_mailbox_sync_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="emaillink",
            name="sent_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop, elidable=False),
        migrations.AlterField(
            model_name="emaillink",
            name="sent_at",
            field=models.DateTimeField(),
        ),
        migrations.RemoveIndex(model_name="emaillink", name="email_link_contact"),
        migrations.RemoveIndex(model_name="emaillink", name="email_link_company"),
        migrations.RemoveIndex(model_name="emaillink", name="email_link_deal"),
        migrations.AlterField(
            model_name="emaillink",
            name="contact",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="emaillink",
            name="company",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to="contacts.company",
            ),
        ),
        migrations.AlterField(
            model_name="emaillink",
            name="deal",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to="pipeline.deal",
            ),
        ),
        migrations.AddIndex(
            model_name="emaillink",
            index=models.Index(
                condition=models.Q(("contact__isnull", False)),
                fields=["contact", "-sent_at", "-message"],
                name="email_link_contact_timeline",
            ),
        ),
        migrations.AddIndex(
            model_name="emaillink",
            index=models.Index(
                condition=models.Q(("company__isnull", False)),
                fields=["company", "-sent_at", "-message"],
                name="email_link_company_timeline",
            ),
        ),
        migrations.AddIndex(
            model_name="emaillink",
            index=models.Index(
                condition=models.Q(("deal__isnull", False)),
                fields=["deal", "-sent_at", "-message"],
                name="email_link_deal_timeline",
            ),
        ),
    ]
