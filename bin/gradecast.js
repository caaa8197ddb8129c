#!/usr/bin/env node
// The `gradecast` command. Runs the compiled CLI from dist/ (`npm run build`).
import { main } from "../dist/src/cli/main.js";

process.exitCode = await main(process.argv);
