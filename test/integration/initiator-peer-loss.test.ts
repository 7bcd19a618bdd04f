/**
 * A target that goes away with commands pending (docs/initiator.md, "Connect and errors"): the
 * project's target as a child process is stopped (SIGSTOP) so that the commands are certainly
 * pending, then killed. libiscsi reconnects without bound and runs no timeout meanwhile; the
 * commands must still end within their timeout: the timed-out one ERR_ISCSI_TIMEOUT, the others
 * ERR_ISCSI_CLOSED naming it — never a wait without end.
 */
import { IscsiSession } from '../../src/initiator/session';
import { startTargetProcess, type TargetProcess } from '../helpers/target-process';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:peer-loss';
let t: TargetProcess | undefined;

afterAll(async () => {
  await t?.kill();
});

test('commands pending when the target dies end within their timeout, and say why', async () => {
  t = await startTargetProcess({ iqn: IQN, luns: ['memory:4M'] });
  const s = await IscsiSession.connect(t.url(0));
  try {
    expect((await s.read16(0n, 1)).length).toBe(512); // the session works
    t.child.kill('SIGSTOP');
    const t0 = Date.now();
    const first = s.read16(0n, 8, { timeoutMs: 2000 }).catch((e: unknown) => e);
    const other = s.read16(8n, 8, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    await t.kill(); // SIGKILL: the connection drops; every reconnect is refused
    const err = await first;
    expect(err).toMatchObject({ code: 'ERR_ISCSI_TIMEOUT', message: expect.stringMatching(/^command 0x88 to iscsi:.* got no answer within 2 s \(the target stopped answering or went away\); the session is closed$/) });
    expect(await other).toMatchObject({ code: 'ERR_ISCSI_CLOSED', message: expect.stringMatching(/closed: command 0x88 got no answer within 2 s/) });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expect(s.read16(0n, 1)).rejects.toMatchObject({ code: 'ERR_ISCSI_CLOSED' });
  } finally {
    await s.close();
  }
});
