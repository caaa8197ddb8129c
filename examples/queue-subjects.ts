// Prints the NATS subject of some queue names as course teams write them, and the
// queue name read back from each subject: the mapping of README's "Subjects".
// Run: node --import tsx examples/queue-subjects.ts [queue name ...]
import { queueNameOfSubject, subjectForQueue } from "../src/index.js";

const examples = process.argv.slice(2);
const queueNames =
  examples.length > 0
    ? examples
    : [
        "python-grader",
        "MITx-42.01x",
        "MITx-42_01x",
        "6.00x",
        "grader*",
        "a>b",
        "python grader",
        "100%",
        "Sorbonne-Maths.L1",
        "北大-计算机.101",
      ];
for (const queueName of queueNames) {
  const subject = subjectForQueue("gradecast", queueName);
  const back = queueNameOfSubject("gradecast", subject);
  console.log(`${JSON.stringify(queueName)} -> ${subject} -> ${JSON.stringify(back)}`);
}
