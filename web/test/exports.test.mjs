// The module exports exactly the values switchboard.d.ts declares (classes,
// functions, constants), so a declared class is one a page can import.
// test/types/usage.ts, checked by tsc, uses every one of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

test('switchboard.js exports what switchboard.d.ts declares, and nothing else', async () => {
  // AppSocket extends the platform's WebSocket: node 20 has none built in.
  globalThis.WebSocket ??= WebSocket;
  const mod = await import('../switchboard.js');
  const runtime = Object.keys(mod).sort();
  const dts = readFileSync(new URL('../switchboard.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|function|const|let|var|abstract class) (\w+)/gm)]
    .map((m) => m[1]);
  assert.deepEqual(runtime, [...new Set(declared)].sort());
  const usage = readFileSync(new URL('./types/usage.ts', import.meta.url), 'utf8');
  for (const name of runtime) assert.match(usage, new RegExp(`\\b${name}\\b`), `test/types/usage.ts does not use ${name}`);
});
