from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="AppliedScore",
            fields=[
                ("submission_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("submission_sequence", models.PositiveIntegerField()),
                ("event_id", models.UUIDField()),
                ("event_time", models.DateTimeField()),
                ("applied_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "applied gradecast score"},
        ),
    ]
