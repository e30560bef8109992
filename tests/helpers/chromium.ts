// Which Chromium the browser tests drive (playwright-core): Debian's when installed (CI installs it), otherwise the
// build that the @sparticuz/chromium devDependency ships, so `npm ci && npm test` passes on a machine with only Node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';
/** CHROMIUM_PATH set to this uses the npm package's build even where Debian's is installed (to try the fallback). */
export const BUNDLED = '@sparticuz/chromium';

/**
 * Flags of @sparticuz/chromium's recommended set (made for one page per serverless call) left out: those that would
 * switch off what the browser tests prove (the same-origin policy, so CORS between app and server; mixed-content
 * blocking), and --single-process, under which closing one browser context ends the browser the next test needs.
 */
const LEFT_OUT = ['--disable-web-security', '--allow-running-insecure-content', '--disable-site-isolation-trials', '--single-process'];

export interface ChromiumChoice {
  executablePath: string;
  args: string[];
  /** Environment for the browser process (the bundled build may need the package's own libraries). */
  env?: Record<string, string>;
  /** Where it came from, for failure messages. */
  source: string;
}

/**
 * CHROMIUM_PATH (a path, or `@sparticuz/chromium`), else Debian's /usr/bin/chromium, else the npm package's build
 * (unpacked on first use under the system temp directory), with that package's flags minus LEFT_OUT.
 * `args` are the caller's own flags, added to whichever is chosen.
 */
export async function chooseChromium(args: string[]): Promise<ChromiumChoice> {
  const wanted = process.env.CHROMIUM_PATH;
  if (wanted && wanted !== BUNDLED) {
    if (!existsSync(wanted)) throw new Error(`CHROMIUM_PATH=${wanted} does not exist`);
    return { executablePath: wanted, args, source: 'CHROMIUM_PATH' };
  }
  if (!wanted && existsSync(DEBIAN_CHROMIUM)) return { executablePath: DEBIAN_CHROMIUM, args, source: "Debian's chromium" };
  const bundled = (await import('@sparticuz/chromium')).default;
  const executablePath = await bundled.executablePath();
  const recommended = bundled.args.filter((a) => !LEFT_OUT.includes(a) && !a.startsWith('--headless'));
  const env = missingLibraries(executablePath) ? bundledLibraries() : undefined;
  return { executablePath, args: [...new Set([...recommended, ...args])], ...(env ? { env } : {}), source: BUNDLED };
}

/** Does the dynamic loader miss a library the binary needs (NSS, on a machine where no browser was ever installed)? */
function missingLibraries(binary: string): boolean {
  const ldd = spawnSync('ldd', [binary], { encoding: 'utf8' });
  return ldd.status === 0 && /not found/.test(ldd.stdout);
}

/**
 * The NSS libraries the package ships for Amazon Linux 2023 (the package unpacks them only on AWS Lambda), unpacked
 * beside its browser and put on the browser's LD_LIBRARY_PATH.
 */
function bundledLibraries(): Record<string, string> {
  const dir = join(tmpdir(), 'al2023');
  if (!existsSync(join(dir, 'lib', 'libnss3.so'))) {
    const archive = join(dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium')), '../../bin/al2023.tar.br');
    mkdirSync(dir, { recursive: true });
    const tar = spawnSync('tar', ['-x', '-C', dir], { input: brotliDecompressSync(readFileSync(archive)) });
    if (tar.status !== 0) throw new Error(`could not unpack ${archive}: ${String(tar.stderr)}`);
  }
  const lib = join(dir, 'lib');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.LD_LIBRARY_PATH = [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  return env;
}
