import type { FastifyInstance } from 'fastify';

/**
 * The scheduler: every `SAGA_TICK_MS` it runs each timed duty once, one after the other (never two
 * passes at once): erasure redeliveries, escalations and repairs; kept-by-law purges; scheduled
 * sweeps and sweep redeliveries; restores, backup expiry and suppression lifting; shutdown progress.
 * Every duty keeps its state in the database, so a restart (or a second instance) carries on where
 * the last pass stopped. Started when the app is ready, stopped (waiting for the pass in hand) on close.
 */
export function registerScheduler(app: FastifyInstance, tickMs: number) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const duties: [string, () => Promise<unknown>][] = [
    ['erasures', () => app.erasures.tick()],
    ['kept', () => app.kept.tick()],
    ['sweeps', () => app.sweeps.tick()],
    ['backups', () => app.backups.tick()],
    ['shutdowns', () => app.shutdowns.tick()],
  ];
  const pass = async () => {
    for (const [name, duty] of duties) {
      if (stopped) return;
      try {
        await duty();
      } catch (err) {
        app.log.warn({ err, duty: name }, 'scheduler duty failed; retried next pass');
      }
    }
  };
  const loop = () => {
    if (stopped) return;
    running = pass().finally(() => {
      running = undefined;
      if (!stopped) timer = setTimeout(loop, tickMs);
    });
  };
  app.addHook('onReady', async () => { timer = setTimeout(loop, Math.min(tickMs, 1000)); });
  app.addHook('onClose', async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  });
}
