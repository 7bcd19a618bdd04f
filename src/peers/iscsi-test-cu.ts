/**
 * libiscsi's conformance suite (iscsi-test-cu, Debian libiscsi-bin) as a peer: runs it and counts
 * honestly. CUnit reports a test that skipped itself ("X is not implemented") as passed, so any
 * test whose output contains [SKIPPED] is counted as a skip, apart from real passes.
 */
import { execFile } from 'node:child_process';

export type Outcome = 'pass' | 'fail' | 'skip';

export interface CunitResult {
  /** "Suite.Test" → outcome, in run order. */
  tests: Map<string, Outcome>;
  pass: number;
  fail: number;
  skip: number;
  /** The lines explaining each failure ("Suite.Test: [FAILED] ..."). */
  failures: string[];
  /**
   * Complaints printed by a suite's cleanup after its last test passed (CUnit prints them on the
   * "passed" line): not test failures — CUnit counts none — but reported, since they show state
   * the target left (e.g. a unit attention pending on the second initiator).
   */
  cleanupRemarks: string[];
}

/** Parses iscsi-test-cu's CUnit "basic" output. */
export function parseCunitOutput(text: string): CunitResult {
  const tests = new Map<string, Outcome>();
  const failures: string[] = [];
  const cleanupRemarks: string[] = [];
  let suite = '';
  let current: string | undefined;
  let skipped = false;
  let why: string[] = [];
  const finish = (outcome: 'pass' | 'fail') => {
    if (!current) return;
    const o: Outcome = outcome === 'fail' ? 'fail' : skipped ? 'skip' : 'pass';
    tests.set(current, o);
    if (o === 'fail') failures.push(`${current}: ${why.join(' | ') || 'FAILED'}`);
    current = undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const s = /^Suite: (\S+)/.exec(line);
    if (s) {
      suite = s[1];
      continue;
    }
    const t = /^\s+Test: (\S+) \.\.\.(.*)$/.exec(line);
    let rest = line;
    if (t) {
      current = `${suite}.${t[1]}`;
      skipped = false;
      why = [];
      rest = t[2];
    }
    if (!current) continue;
    if (rest.includes('[SKIPPED]')) skipped = true;
    // "passed" followed on the same line by [FAILED] text: the suite's cleanup (clear_pr on every
    // session) printed it after the last test had passed.
    const passedThenCleanup = /^\s*passed\s+\[FAILED\]/.exec(rest);
    if (passedThenCleanup) {
      cleanupRemarks.push(`${current} (suite cleanup): ${rest.replace(/^\s*passed\s*/, '').trim()}`);
      finish('pass');
      continue;
    }
    if (rest.includes('[FAILED]')) why.push(rest.trim());
    if (/^\s*passed\s*$/.test(rest) || /\spassed\s*$/.test(rest)) finish('pass');
    else if (/(^|\s)FAILED\s*$/.test(rest)) finish('fail');
  }
  let pass = 0;
  let fail = 0;
  let skip = 0;
  for (const o of tests.values()) {
    if (o === 'pass') pass++;
    else if (o === 'fail') fail++;
    else skip++;
  }
  return { tests, pass, fail, skip, failures, cleanupRemarks };
}

/** Runs `iscsi-test-cu -d -t FAMILY URL` (bounded) and parses it. */
export async function runIscsiTestCu(
  url: string,
  opts: { family?: string; timeoutMs?: number; initiatorName?: string; secondUrl?: string } = {},
): Promise<CunitResult & { output: string }> {
  const args = ['--dataloss', '-t', opts.family ?? 'ALL'];
  if (opts.initiatorName) args.push('-i', opts.initiatorName);
  args.push(url);
  if (opts.secondUrl) args.push(opts.secondUrl); // enables the MultipathIO tests
  const output = await new Promise<string>((resolve, reject) => {
    execFile('iscsi-test-cu', args, { timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // iscsi-test-cu exits 1 when any test failed; only a signal or a spawn failure is an error here.
      if (err && (err as { killed?: boolean }).killed) reject(new Error(`iscsi-test-cu timed out or was killed: ${stderr.slice(-500)}`));
      else if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
      else resolve(stdout + stderr);
    });
  });
  return { ...parseCunitOutput(output), output };
}
