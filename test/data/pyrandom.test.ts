// PyRandom vs CPython: a scripted sequence of calls per seed, recorded with /usr/bin/python3 by
// tools/gen-data-fixtures.py and replayed here in the same order on one generator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PyRandom, bitLength, sampleUsesPool, seedWords } from '../../src/data/pyrandom.js';
import { errorOf, fixtureJson } from './helpers.js';

type Call = [string, ...number[]];
interface Fixture {
  python: string;
  script: Call[];
  sample_branch: [number, number, boolean][];
  cases: { seed: number | string; state0_head: number[]; state0_index: number; results: unknown[]; state_end: number[] | null }[];
}
const fx = fixtureJson<Fixture>('pyrandom.json');

const seedOf = (s: number | string): number | bigint => (typeof s === 'string' ? BigInt(s) : s);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function replay(r: PyRandom, call: Call): unknown {
  const [op, a = 0, b = 0, c] = call;
  switch (op) {
    case 'u32': return Array.from({ length: a }, () => r.getrandbits(32));
    case 'random': return Array.from({ length: a }, () => r.random());
    case 'getrandbits': return a <= 53 ? r.getrandbits(a) : r.getrandbitsBig(a);
    case 'randrange': return call.length === 2 ? r.randrange(a) : call.length === 3 ? r.randrange(a, b) : r.randrange(a, b, c);
    case 'randint': return r.randint(a, b);
    case 'sample': return r.sample(range(a), b);
    case 'shuffle': return r.shuffle(range(a));
    case 'choice': return r.choice(range(a));
    case 'choices': return r.choices(range(a), b);
    case 'uniform': return r.uniform(a, b);
    default: throw new Error(`unknown op ${op}`);
  }
}

test(`fixture was recorded with CPython 3 (${fx.python})`, () => {
  assert.ok(/^3\.\d+/.test(fx.python));
  assert.ok(fx.cases.length >= 10);
});

test('seedWords: absolute value split into 32-bit words, least significant first', () => {
  assert.equal(seedWords(0), [0]);
  assert.equal(seedWords(1), [1]);
  assert.equal(seedWords(-7), [7]);
  assert.equal(seedWords(2 ** 32 - 1), [0xffffffff]);
  assert.equal(seedWords(2 ** 32), [0, 1]);
  assert.equal(seedWords(2n ** 64n + 7n), [7, 0, 1]);
});

test('bitLength matches int.bit_length()', () => {
  assert.equal([0, 1, 2, 3, 4, 255, 256, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1].map(bitLength), [0, 1, 2, 2, 3, 8, 9, 32, 32, 33, 53]);
});

for (const c of fx.cases) {
  test(`seed ${c.seed}: state after seeding and the whole call script match CPython`, () => {
    const r = new PyRandom(seedOf(c.seed));
    const st = r.getState();
    assert.equal(st.slice(0, 8), c.state0_head, 'initial state words');
    assert.is(st[624], c.state0_index, 'initial index');
    fx.script.forEach((call, i) => {
      const want = c.results[i];
      const got = replay(r, call);
      if (typeof got === 'bigint') assert.is(got, BigInt(want as number | string), `call ${i}: ${JSON.stringify(call)}`);
      else assert.equal(got, want, `call ${i}: ${JSON.stringify(call)}`);
    });
    if (c.state_end) assert.equal(r.getState(), c.state_end, 'state after the script (Python getstate()[1])');
  });
}

test('sample(): pool vs set branch switch is CPython\'s (setsize rule), incl. its boundaries', () => {
  for (const [n, k, pool] of fx.sample_branch) assert.is(sampleUsesPool(n, k), pool, `n=${n} k=${k}`);
  // Both branches were exercised by the scripted cases above.
  assert.ok(fx.sample_branch.some(([, , p]) => p) && fx.sample_branch.some(([, , p]) => !p));
});

test('setState(getState()) resumes the stream exactly (Python getstate()[1] layout)', () => {
  const a = new PyRandom(99);
  a.random(); a.sample(range(500), 30);
  const saved = JSON.parse(JSON.stringify(a.getState())) as number[];
  const next = [a.random(), a.getrandbits(40), a.randbelow(1000)];
  const b = new PyRandom(0);
  b.setState(saved);
  assert.equal([b.random(), b.getrandbits(40), b.randbelow(1000)], next);
});

test('bad arguments are errors, as in CPython', async () => {
  const r = new PyRandom(1);
  assert.match(await errorOf(() => r.sample([1, 2, 3], 4)), /Sample larger than population/);
  assert.match(await errorOf(() => r.sample([1, 2, 3], -1)), /Sample larger than population/);
  assert.match(await errorOf(() => r.choice([])), /empty sequence/);
  assert.match(await errorOf(() => r.randint(5, 4)), /empty range/);
  assert.match(await errorOf(() => r.randrange(0)), /empty range/);
  assert.match(await errorOf(() => r.randrange(0, 10, 0)), /zero step/);
  assert.match(await errorOf(() => r.randbelow(0)), /positive/);
  assert.match(await errorOf(() => r.getrandbits(-1)), /non-negative/);
  assert.match(await errorOf(() => r.getrandbits(54)), /getrandbitsBig/);
  assert.match(await errorOf(() => new PyRandom(1.5)), /integer seed/);
  assert.match(await errorOf(() => r.setState([1, 2, 3])), /625/);
});

test.run();
