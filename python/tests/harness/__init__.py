"""Real servers for the Python tests: nats-server, gradecast and the LMS worker, each on a
free loopback port with a temp directory, waited for on a condition, and cleaned up."""
