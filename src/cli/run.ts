// Process entry of the `gradecast` command (bin/gradecast.js loads the compiled copy).
import { main } from "./main.js";

// A reader that went away (`gradecast tail | head`) is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv);
