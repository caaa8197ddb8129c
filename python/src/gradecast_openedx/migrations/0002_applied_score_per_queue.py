"""A submission is its id within its queue: AppliedScore gets `queue_name`, an `id` primary key
and one row per (queue_name, submission_id).

The table is rebuilt (a new table, rows copied, the old one dropped and the new one renamed) so
that the primary key change works the same on every database Django supports. Rows applied
before this migration did not record their queue: they keep an empty `queue_name`, which no
event carries (gradecast requires a queue name), so they no longer match any event. An event
applied before it and delivered again afterwards (a stream replayed from the start, a re-drive)
is applied once more; events arrive in stream order, so the newest score still ends up applied.
"""

from django.db import migrations, models

#: Every column of the version 0001 table, copied as it is (`applied_at` included).
COPIED_COLUMNS = ("submission_id", "submission_sequence", "event_id", "event_time", "applied_at")


def copy_applied_scores(apps, schema_editor):
    """Copies every row with an empty queue name."""
    old = apps.get_model("gradecast_openedx", "AppliedScore")._meta.db_table
    new = apps.get_model("gradecast_openedx", "AppliedScoreByQueue")._meta.db_table
    quote = schema_editor.quote_name
    columns = ", ".join(quote(column) for column in COPIED_COLUMNS)
    schema_editor.execute(
        f"INSERT INTO {quote(new)} ({quote('queue_name')}, {columns}) "
        f"SELECT '', {columns} FROM {quote(old)}"
    )


def copy_back(apps, schema_editor):
    """Undoes the copy while every submission id has one row; refuses when two queues share an
    id (one row per id could keep only one of them)."""
    new = apps.get_model("gradecast_openedx", "AppliedScoreByQueue")
    db = schema_editor.connection.alias
    shared = (
        new.objects.using(db)
        .values("submission_id")
        .annotate(rows=models.Count("id"))
        .filter(rows__gt=1)
        .values_list("submission_id", flat=True)[:5]
    )
    if shared:
        raise RuntimeError(
            "cannot unapply gradecast_openedx 0002: submission ids "
            f"{', '.join(map(str, shared))} have rows of several queues"
        )
    old = apps.get_model("gradecast_openedx", "AppliedScore")._meta.db_table
    quote = schema_editor.quote_name
    columns = ", ".join(quote(column) for column in COPIED_COLUMNS)
    schema_editor.execute(
        f"INSERT INTO {quote(old)} ({columns}) SELECT {columns} FROM {quote(new._meta.db_table)}"
    )


class Migration(migrations.Migration):
    dependencies = [("gradecast_openedx", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="AppliedScoreByQueue",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("queue_name", models.CharField(max_length=128)),
                ("submission_id", models.BigIntegerField()),
                ("submission_sequence", models.PositiveIntegerField()),
                ("event_id", models.UUIDField()),
                ("event_time", models.DateTimeField()),
                ("applied_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "applied gradecast score"},
        ),
        migrations.RunPython(copy_applied_scores, copy_back),
        migrations.DeleteModel(name="AppliedScore"),
        migrations.RenameModel(old_name="AppliedScoreByQueue", new_name="AppliedScore"),
        migrations.AddConstraint(
            model_name="appliedscore",
            constraint=models.UniqueConstraint(
                fields=("queue_name", "submission_id"), name="gradecast_one_row_per_submission"
            ),
        ),
    ]
