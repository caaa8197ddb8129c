#!/usr/bin/env node
// The `gradecast` command: runs the compiled CLI from dist/ (`npm run build`).
import "../dist/src/cli/run.js";
