from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="GradebookWrite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("event_id", models.UUIDField()),
                ("submission_id", models.BigIntegerField()),
                ("points_earned", models.IntegerField()),
                ("points_possible", models.IntegerField()),
                ("score_msg", models.TextField()),
            ],
        ),
    ]
