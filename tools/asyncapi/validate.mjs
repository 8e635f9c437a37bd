// Usage: node validate.mjs path/to/asyncapi.json
// Exits non-zero when the AsyncAPI parser reports any error; prints every diagnostic.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, 'utf8'));
const severities = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severities[d.severity]} ${d.code} at ${d.path.join('.') || '/'}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.log(`INVALID: ${errors.length} error(s) in ${path}`);
  process.exit(1);
}
console.log(
  `VALID AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.allMessages().length} messages`,
);
