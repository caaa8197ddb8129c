"""A stand-in for edx-platform's grades code: a receiver of the upstream signal that writes
the score to the database, and tells the tests what it received."""
