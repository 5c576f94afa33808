'use strict';
// The fault proxy (tests/fixtures/fault_proxy.py) for the Node tests: a subprocess
// between a client and a loopback server that refuses, resets, blackholes, delays,
// closes after N bytes or flaps on command (the script's docstring lists the commands).
//
//   const proxy = await new FaultProxy(server.port).start();
//   proxy.target;                      // 'tcp://127.0.0.1:<proxy.port>'
//   await proxy.command('refuse');     // 'OK mode=refuse port=...'; rejects on ERR
//   await proxy.stats();               // { accepted: 0, active: 0, mode: 'refuse' }
//   await proxy.close();               // stdin closed: the proxy closes everything and exits
//
// Standalone (needs neither the switchboard package nor helpers.js). SB_PYTHON picks the
// interpreter (default python3).

const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const SCRIPT = path.resolve(__dirname, '..', 'fixtures', 'fault_proxy.py');

class FaultProxy {
  /** A proxy in front of `host:upstreamPort` (not started yet: call `start()`). */
  constructor(upstreamPort, { host = '127.0.0.1', python = process.env.SB_PYTHON || 'python3' } = {}) {
    this.upstream = `${host}:${upstreamPort}`;
    this.python = python;
    this.port = 0;
    this.target = '';
    this.child = null;
    this.lines = [];
    this.waiters = [];
    this.exited = null;
    this.broken = null;
  }

  /** Spawns the proxy and waits (up to `timeoutMs`) for its port; resolves with `this`. */
  async start(timeoutMs = 30_000) {
    const child = spawn(this.python, [SCRIPT, '--upstream', this.upstream], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.once('error', (err) => this.fail(err));
    child.stdin.on('error', () => {}); // EPIPE if it died: reported by command()
    this.exited.then(({ code, signal }) => this.fail(new Error(`fault proxy exited (${code ?? signal})`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(line);
      else this.lines.push(line);
    });
    let first;
    try {
      first = await this.nextLine(timeoutMs, 'start');
    } catch (err) {
      await this.close();
      throw err;
    }
    const m = /^PORT (\d+)$/.exec(first);
    if (!m) {
      await this.close();
      throw new Error(`fault proxy did not start (first line ${JSON.stringify(first)})`);
    }
    this.port = Number(m[1]);
    this.target = `tcp://127.0.0.1:${this.port}`;
    return this;
  }

  fail(err) {
    this.broken = this.broken || err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  nextLine(timeoutMs, what) {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // A late reply would answer the wrong command: this proxy is done.
        this.fail(new Error(`fault proxy: no reply to ${what} within ${timeoutMs} ms`));
        if (this.child && !this.child.stdin.writableEnded) this.child.stdin.end(); // exits
      }, timeoutMs);
      this.waiters.push({
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /** Sends one command line; resolves with its 'OK ...' reply, rejects on 'ERR ...'. */
  async command(line, timeoutMs = 10_000) {
    if (!this.child || this.child.stdin.destroyed || this.child.stdin.writableEnded) {
      throw new Error(`fault proxy: command ${JSON.stringify(line)}: the proxy is closed`);
    }
    if (this.broken) throw this.broken;
    const reply = this.nextLine(timeoutMs, JSON.stringify(line));
    this.child.stdin.write(`${line.trim()}\n`);
    const answer = await reply;
    if (!answer.startsWith('OK')) {
      throw new Error(`fault proxy: command ${JSON.stringify(line)}: ${answer}`);
    }
    return answer;
  }

  /** The `stats` answer: { accepted, active, mode }. */
  async stats() {
    const out = {};
    for (const word of (await this.command('stats')).split(' ').slice(1)) {
      const [k, v] = word.split('=');
      out[k] = /^\d+$/.test(v) ? Number(v) : v;
    }
    return out;
  }

  /** Closes the proxy's stdin and waits (up to `timeoutMs`) for it to exit, then kills
   *  it. Resolves with its exit code (null if killed). Safe twice. */
  async close(timeoutMs = 10_000) {
    const child = this.child;
    if (!child) return null;
    if (!child.stdin.writableEnded) child.stdin.end();
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    let result = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (result === null) {
      child.kill('SIGKILL');
      result = await this.exited;
      return null;
    }
    return result.code;
  }
}

module.exports = { FaultProxy, FAULT_PROXY_SCRIPT: SCRIPT };
