// Parses a Prometheus text exposition file with parse-prometheus-text-format and prints the
// metric families as JSON; exits non-zero (with the parser's message) when the text is invalid.
'use strict';
const fs = require('fs');
const parse = require('parse-prometheus-text-format');
const text = fs.readFileSync(process.argv[2], 'utf8');
try {
  process.stdout.write(JSON.stringify(parse(text)));
} catch (e) {
  process.stderr.write(String(e && e.message || e) + '\n');
  process.exit(2);
}
