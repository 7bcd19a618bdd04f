/**
 * Runs a real tgt (Linux SCSI target framework, user space) as a peer: its own tgtd on a free
 * loopback port with its own control port (`tgtd -f -C N --iscsi portal=127.0.0.1:PORT`), one
 * target with file-backed thick LUNs. Used by integration tests, benchmarks and the drill.
 * A tgtd with targets ignores SIGTERM, so stop() kills it (SIGKILL) and waits for the exit.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TgtLunSpec {
  /** Size in bytes (a multiple of the block size). */
  size: number;
  /** Backing file; created thick (fallocate) when it does not exist. Default: <dir>/lunN.img */
  path?: string;
  /** 512 (default) or 4096. */
  blockSize?: number;
}

export interface TgtOptions {
  /** Folder for backing files and the log. */
  dir: string;
  iqn?: string;
  luns: TgtLunSpec[];
  /** Negotiation parameters set on the target (e.g. MaxRecvDataSegmentLength). */
  params?: Record<string, string | number>;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Tgt {
  readonly port: number;
  readonly controlPort: number;
  readonly iqn: string;
  readonly lunPaths: string[];
  private readonly proc: ChildProcess;
  private exited: Promise<void>;

  private constructor(proc: ChildProcess, port: number, controlPort: number, iqn: string, lunPaths: string[]) {
    this.proc = proc;
    this.port = port;
    this.controlPort = controlPort;
    this.iqn = iqn;
    this.lunPaths = lunPaths;
    this.exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
  }

  get portal(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** libiscsi URL of LUN n (tgt numbers data LUNs from 1; LUN 0 is its controller). */
  url(lun = 1): string {
    return `iscsi://127.0.0.1:${this.port}/${this.iqn}/${lun}`;
  }

  /** The binary that must be installed (by `make setup`). */
  static available(): boolean {
    return fs.existsSync('/usr/sbin/tgtd') && fs.existsSync('/usr/sbin/tgtadm');
  }

  static async start(opts: TgtOptions): Promise<Tgt> {
    fs.mkdirSync(opts.dir, { recursive: true });
    const port = await freePort();
    const iqn = opts.iqn ?? `iqn.2026-11.io.xcopy-agent.peer:tgt-${port}`;
    // The control port names an abstract unix socket; pick one no other tgtd here uses.
    let controlPort = 0;
    for (let i = 0; i < 20 && controlPort === 0; i++) {
      const c = 1000 + Math.floor(Math.random() * 31000); // tgtd accepts 0..32767
      const probe = await run('tgtadm', ['-C', String(c), '--op', 'show', '--mode', 'system']).then(
        () => true,
        () => false,
      );
      if (!probe) controlPort = c;
    }
    if (controlPort === 0) throw new Error('no free tgtd control port found');
    const log = fs.openSync(path.join(opts.dir, `tgtd-${port}.log`), 'a');
    const proc = spawn('tgtd', ['-f', '-C', String(controlPort), '--iscsi', `portal=127.0.0.1:${port}`], {
      stdio: ['ignore', log, log],
      detached: false,
    });
    fs.closeSync(log);
    const lunPaths: string[] = [];
    const tgt = new Tgt(proc, port, controlPort, iqn, lunPaths);
    try {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`tgtd exited with ${proc.exitCode} (see ${opts.dir})`);
          return tgt.adm(['--op', 'show', '--mode', 'system']).then(
            () => true,
            () => false,
          );
        },
        10_000,
        'tgtd to answer on its control port',
      );
      await tgt.adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn]);
      for (const [k, v] of Object.entries(opts.params ?? {})) {
        await tgt.adm(['--lld', 'iscsi', '--op', 'update', '--mode', 'target', '--tid', '1', '-n', k, '-v', String(v)]);
      }
      for (let i = 0; i < opts.luns.length; i++) {
        const spec = opts.luns[i];
        const file = spec.path ?? path.join(opts.dir, `tgt-${port}-lun${i + 1}.img`);
        if (!fs.existsSync(file)) {
          fs.writeFileSync(file, '');
          await run('fallocate', ['-l', String(spec.size), file]);
        }
        lunPaths.push(file);
        const args = ['--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(i + 1), '-b', file];
        if (spec.blockSize) args.push('--blocksize', String(spec.blockSize));
        await tgt.adm(args);
      }
      await tgt.adm(['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL']);
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const s = net.connect(port, '127.0.0.1');
            s.once('connect', () => {
              s.destroy();
              resolve(true);
            });
            s.once('error', () => resolve(false));
          }),
        10_000,
        `tgtd to listen on 127.0.0.1:${port}`,
      );
    } catch (err) {
      await tgt.stop();
      throw err;
    }
    return tgt;
  }

  /** tgtadm against this tgtd's control port. */
  async adm(args: string[]): Promise<string> {
    const { stdout } = await run('tgtadm', ['-C', String(this.controlPort), ...args]);
    return stdout;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}
