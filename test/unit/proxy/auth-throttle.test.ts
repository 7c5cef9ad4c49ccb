import t from 'tap';
import type { FailureDelayConfig } from '../../../src/config/pgward-config.ts';
import { FailureDelays, MAX_FAILURE_KEYS, PendingAuthGate, sleep } from '../../../src/proxy/auth-throttle.ts';

const CONFIG: FailureDelayConfig = { after: 5, initialMs: 250, maxMs: 10_000, forgetAfterMs: 600_000 };

/** A clock the test moves by hand. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000_000;
  return { now: () => time, advance: (ms) => (time += ms) };
}

/** The delays the session would wait for `count` failures in a row: ask first, then record. */
function failRepeatedly(delays: FailureDelays, address: string, user: string, count: number): number[] {
  const seen: number[] = [];
  for (let i = 0; i < count; i++) {
    seen.push(delays.delayFor(address, user));
    delays.recordFailure(address, user);
  }
  return seen;
}

t.test('the first `after` failures are answered at once, then the delay doubles up to maxMs', async (t) => {
  const delays = new FailureDelays(CONFIG, { now: fakeClock().now });
  t.same(
    failRepeatedly(delays, '192.0.2.1', 'alice', 14),
    [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000],
  );
});

t.test('a delay never exceeds maxMs however many failures, and initialMs 0 stays 0', async (t) => {
  const delays = new FailureDelays(CONFIG, { now: fakeClock().now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 5000);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 10_000);
  delays.reconfigure({ ...CONFIG, initialMs: 0, maxMs: 0 });
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 0, 'no NaN from 0 × 2^n');
});

t.test('after 0 delays from the first failure', async (t) => {
  const delays = new FailureDelays({ ...CONFIG, after: 0 }, { now: fakeClock().now });
  t.same(failRepeatedly(delays, '192.0.2.1', 'alice', 3), [250, 500, 1000]);
});

t.test('another user or another address has its own count', async (t) => {
  const delays = new FailureDelays(CONFIG, { now: fakeClock().now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 7);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 1000);
  t.equal(delays.delayFor('192.0.2.1', 'bob'), 0, 'other user');
  t.equal(delays.delayFor('192.0.2.2', 'alice'), 0, 'other address');
  t.same(failRepeatedly(delays, '192.0.2.2', 'alice', 6), [0, 0, 0, 0, 0, 250]);
  t.equal(delays.size, 2);
});

t.test('a success clears the key, and only that key', async (t) => {
  const delays = new FailureDelays(CONFIG, { now: fakeClock().now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 8);
  failRepeatedly(delays, '192.0.2.1', 'bob', 8);
  delays.recordSuccess('192.0.2.1', 'alice');
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 0);
  t.equal(delays.delayFor('192.0.2.1', 'bob'), 2000);
  t.equal(delays.size, 1);
  t.same(failRepeatedly(delays, '192.0.2.1', 'alice', 6), [0, 0, 0, 0, 0, 250], 'counts from zero again');
  delays.recordSuccess('192.0.2.9', 'nobody');
  t.equal(delays.size, 2, 'a success of an unknown key changes nothing');
});

t.test('a key with no failure for forgetAfterMs starts again from zero', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 7);
  clock.advance(CONFIG.forgetAfterMs - 1);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 1000, 'one millisecond before, still counted');
  t.equal(delays.size, 1);
  delays.recordFailure('192.0.2.1', 'alice');
  clock.advance(CONFIG.forgetAfterMs - 1);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 2000, 'a failure renews the key');
  clock.advance(1);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 0, 'forgotten');
  t.equal(delays.size, 0);
  t.same(failRepeatedly(delays, '192.0.2.1', 'alice', 6), [0, 0, 0, 0, 0, 250]);
});

t.test('asking for a delay does not renew a key', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 6);
  for (let i = 0; i < 10; i++) {
    clock.advance(CONFIG.forgetAfterMs / 10 - 1);
    delays.delayFor('192.0.2.1', 'alice');
  }
  clock.advance(10);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 0);
});

t.test('expired keys are dropped from size without being asked about', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now });
  delays.recordFailure('192.0.2.1', 'alice');
  clock.advance(1000);
  delays.recordFailure('192.0.2.2', 'bob');
  t.equal(delays.size, 2);
  clock.advance(CONFIG.forgetAfterMs - 1000);
  t.equal(delays.size, 1, 'the older one is gone');
  clock.advance(1000);
  t.equal(delays.size, 0);
});

t.test('beyond maxKeys the least recently failed key is forgotten', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now, maxKeys: 3 });
  for (const user of ['a', 'b', 'c']) {
    failRepeatedly(delays, '192.0.2.1', user, 6);
    clock.advance(1);
  }
  delays.recordFailure('192.0.2.1', 'a');
  clock.advance(1);
  delays.recordFailure('192.0.2.1', 'd');
  t.equal(delays.size, 3);
  t.equal(delays.delayFor('192.0.2.1', 'b'), 0, 'b failed least recently');
  t.equal(delays.delayFor('192.0.2.1', 'a'), 1000, 'a was renewed by its last failure');
  t.equal(delays.delayFor('192.0.2.1', 'c'), 500);
  t.equal(delays.size, 3);
});

t.test('expired keys make room before a live one is evicted', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now, maxKeys: 2 });
  failRepeatedly(delays, '192.0.2.1', 'old', 6);
  clock.advance(CONFIG.forgetAfterMs - 10);
  failRepeatedly(delays, '192.0.2.1', 'recent', 6);
  clock.advance(10);
  delays.recordFailure('192.0.2.1', 'new');
  t.equal(delays.delayFor('192.0.2.1', 'recent'), 500);
  t.equal(delays.size, 2);
});

t.test(`the default bound is MAX_FAILURE_KEYS (${MAX_FAILURE_KEYS}) keys`, async (t) => {
  const delays = new FailureDelays(CONFIG, { now: fakeClock().now });
  for (let i = 0; i <= MAX_FAILURE_KEYS; i++) delays.recordFailure('192.0.2.1', `user${i}`);
  t.equal(delays.size, MAX_FAILURE_KEYS);
});

t.test('a long user name costs no more than a short one: keys have a fixed size', async (t) => {
  const delays = new FailureDelays({ ...CONFIG, after: 0 }, { now: fakeClock().now });
  const long = 'x'.repeat(9000);
  delays.recordFailure('192.0.2.1', long);
  t.equal(delays.delayFor('192.0.2.1', long), 500);
  t.equal(delays.delayFor('192.0.2.1', `${long}y`), 250, 'a longer name is another key');
});

t.test('tricky addresses and users never share a key', async (t) => {
  const pairs: [string, string][] = [
    ['a', 'b:c'],
    ['a:b', 'c'],
    ['a:', 'bc'],
    ['', 'a:bc'],
    ['a:bc', ''],
    ['1:a', 'b'],
    ['1', ':ab'],
    ['a\0', 'b'],
    ['a', '\0b'],
    ['\uD800', 'a'],
    ['\uDBFF', 'a'],
    ['\uFFFD', 'a'],
  ];
  // after 0, initialMs 1, no cap: a key with n failures waits 2^n, so each pair's count shows in its delay.
  const uncapped = { ...CONFIG, after: 0, initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER };
  const delays = new FailureDelays(uncapped, { now: fakeClock().now });
  pairs.forEach(([address, user], i) => {
    for (let n = 0; n <= i; n++) delays.recordFailure(address, user);
  });
  t.equal(delays.size, pairs.length);
  pairs.forEach(([address, user], i) => {
    t.equal(delays.delayFor(address, user), 2 ** (i + 1), JSON.stringify([address, user]));
  });
});

t.test('reconfigure keeps the counts and judges them by the new settings', async (t) => {
  const clock = fakeClock();
  const delays = new FailureDelays(CONFIG, { now: clock.now });
  failRepeatedly(delays, '192.0.2.1', 'alice', 7);
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 1000);
  delays.reconfigure({ after: 3, initialMs: 100, maxMs: 500, forgetAfterMs: 60_000 });
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 500, '100 × 2^(7-3) capped at 500');
  delays.reconfigure({ ...CONFIG, after: 10 });
  t.equal(delays.delayFor('192.0.2.1', 'alice'), 0, 'below the new after');
  delays.reconfigure({ ...CONFIG, forgetAfterMs: 60_000 });
  clock.advance(60_000);
  t.equal(delays.size, 0, 'a shorter forgetAfterMs forgets at once');
});

t.test('maxKeys must be a positive integer', async (t) => {
  t.throws(() => new FailureDelays(CONFIG, { maxKeys: 0 }), RangeError);
  t.throws(() => new FailureDelays(CONFIG, { maxKeys: 1.5 }), RangeError);
});

t.test('the gate lets in up to max and refuses beyond', async (t) => {
  const gate = new PendingAuthGate(3);
  const tickets = [gate.tryEnter(), gate.tryEnter(), gate.tryEnter()];
  t.ok(tickets.every((ticket) => ticket !== null));
  t.equal(gate.pending, 3);
  t.equal(gate.tryEnter(), null);
  t.equal(gate.pending, 3, 'a refusal takes no place');
});

t.test('a release frees one place, and a second release of the same ticket counts once', async (t) => {
  const gate = new PendingAuthGate(2);
  const first = gate.tryEnter();
  const second = gate.tryEnter();
  t.equal(gate.tryEnter(), null);
  first?.release();
  t.equal(gate.pending, 1);
  first?.release();
  first?.release();
  t.equal(gate.pending, 1, 'double release counts once');
  const third = gate.tryEnter();
  t.not(third, null);
  t.equal(gate.tryEnter(), null, 'still only two places');
  second?.release();
  third?.release();
  t.equal(gate.pending, 0);
});

t.test('setMax below pending refuses new entries until enough leave', async (t) => {
  const gate = new PendingAuthGate(4);
  const tickets = [gate.tryEnter(), gate.tryEnter(), gate.tryEnter(), gate.tryEnter()];
  gate.setMax(2);
  t.equal(gate.max, 2);
  t.equal(gate.pending, 4, 'those inside stay');
  t.equal(gate.tryEnter(), null);
  tickets[0]?.release();
  tickets[1]?.release();
  t.equal(gate.tryEnter(), null, 'two pending, max two');
  tickets[2]?.release();
  t.not(gate.tryEnter(), null);
  t.equal(gate.tryEnter(), null);
  gate.setMax(10);
  t.not(gate.tryEnter(), null, 'a raised cap lets in at once');
});

t.test('setMax 0 refuses everyone; a negative or fractional max is an error', async (t) => {
  const gate = new PendingAuthGate(1);
  gate.setMax(0);
  t.equal(gate.tryEnter(), null);
  t.throws(() => gate.setMax(-1), RangeError);
  t.throws(() => gate.setMax(1.5), RangeError);
  t.throws(() => new PendingAuthGate(Number.NaN), RangeError);
  t.equal(gate.max, 0, 'a rejected value changes nothing');
});

t.test('sleep waits the time asked', async (t) => {
  const started = performance.now();
  await sleep(30);
  t.ok(performance.now() - started >= 25);
});

t.test('sleep resolves early, without rejecting, when its signal aborts', async (t) => {
  const controller = new AbortController();
  const started = performance.now();
  setTimeout(() => controller.abort(), 10);
  // A 60 s timer left behind would also keep this test process alive for a minute.
  await sleep(60_000, controller.signal);
  t.ok(performance.now() - started < 5000);
  t.ok(controller.signal.aborted);
});

t.test('sleep with an already aborted signal or no time resolves at once', async (t) => {
  const started = performance.now();
  await sleep(60_000, AbortSignal.abort());
  await sleep(0);
  await sleep(-5);
  t.ok(performance.now() - started < 1000);
});

t.test('settle records an outcome and returns the wait for it', async (t) => {
  const delays = new FailureDelays({ ...CONFIG, after: 2 });
  t.same(
    [1, 2, 3, 4].map(() => delays.settle('10.0.0.1', 'alice', false)),
    [0, 0, 250, 500],
    'failures: the delay each one is answered after',
  );
  t.equal(delays.settle('10.0.0.1', 'alice', true), 0, 'a success is answered at once');
  t.equal(delays.settle('10.0.0.1', 'alice', false), 0, 'and cleared the count');
});
