/** atDeadline: fires once the deadline has passed, never for an invalid date, never once cancelled. */

import t from 'tap';
import { atDeadline } from '../../../src/proxy/deadline.ts';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('fires at the deadline, not before', async (t) => {
  const deadline = new Date(Date.now() + 80);
  let firedAt = 0;
  atDeadline(deadline, () => {
    firedAt = Date.now();
  });
  await settle(40);
  t.equal(firedAt, 0, 'not yet');
  await settle(120);
  t.ok(firedAt >= deadline.getTime(), 'fired once the deadline passed');
});

t.test('a past deadline fires at once; an invalid date or a cancel never fires', async (t) => {
  let past = 0;
  atDeadline(new Date(Date.now() - 1000), () => past++);
  let invalid = 0;
  atDeadline(new Date(Number.NaN), () => invalid++);
  let cancelled = 0;
  const cancel = atDeadline(new Date(Date.now() + 20), () => cancelled++);
  cancel();
  await settle(60);
  t.equal(past, 1);
  t.equal(invalid, 0);
  t.equal(cancelled, 0);
});
