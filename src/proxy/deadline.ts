/**
 * A timer for a wall-clock deadline that may be far away (a token's expiry): setTimeout cannot wait
 * longer than about 24.8 days, so a later deadline re-arms until it is reached. Never keeps the
 * process alive on its own.
 */

/** setTimeout's longest wait. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `action` once `deadline` has passed; returns the cancel. An invalid date never fires. */
export function atDeadline(deadline: Date, action: () => void): () => void {
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    const wait = deadline.getTime() - Date.now();
    if (wait <= 0) {
      timer = null;
      action();
      return;
    }
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  if (Number.isFinite(deadline.getTime())) timer = setTimeout(arm, 0).unref();
  return () => {
    if (timer) clearTimeout(timer);
  };
}
