/**
 * A poll that runs beside a long operation: `tick` every `ms` until it returns false or the
 * poll is stopped. stop() ends the current wait at once (the operation must not end on the
 * poll's next tick) and resolves when the loop has ended. The timer is ref'd: a caller awaiting
 * the poll keeps the process alive.
 */
export interface Poll {
  stop(): Promise<void>;
}

export function every(ms: number, tick: () => Promise<boolean | void>): Poll {
  let running = true;
  let timer: NodeJS.Timeout | undefined;
  let wake = () => {};
  const loop = (async () => {
    while (running) {
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, ms);
      });
      if (!running || (await tick()) === false) break;
    }
  })();
  return {
    stop: () => {
      running = false;
      clearTimeout(timer);
      wake();
      return loop;
    },
  };
}
