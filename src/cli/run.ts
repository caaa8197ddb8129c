// Process entry of the `gradecast` command (bin/gradecast.js loads the compiled copy).
import { main } from "./main.js";

process.exitCode = await main(process.argv);
