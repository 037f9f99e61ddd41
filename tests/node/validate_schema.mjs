// validate_schema.mjs - independent check of constrained-decoding outputs:
// every line of OUTPUTS ({"schema": index, "text": "..."}) must be JSON that
// validates against SCHEMAS[index] with Ajv (draft 2020-12) and ajv-formats.
// Usage: node validate_schema.mjs SCHEMAS.json OUTPUTS.jsonl
// Prints one line per failure and a summary; exit 1 on any failure.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [schemasPath, outputsPath] = process.argv.slice(2);
const schemas = JSON.parse(readFileSync(schemasPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const validators = schemas.map((s) => ajv.compile(s));
let n = 0, bad = 0;
for (const line of readFileSync(outputsPath, "utf8").split("\n")) {
  if (!line) continue;
  const { schema, text } = JSON.parse(line);
  n++;
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    bad++;
    console.log(`schema ${schema}: not JSON: ${JSON.stringify(text)}`);
    continue;
  }
  if (!validators[schema](value)) {
    bad++;
    console.log(`schema ${schema}: invalid: ${JSON.stringify(text)} ${JSON.stringify(validators[schema].errors)}`);
  }
}
console.log(`validated ${n} outputs, ${bad} failed`);
process.exit(bad ? 1 : 0);
