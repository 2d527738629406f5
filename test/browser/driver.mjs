// driver.mjs drives a web phone page in a headless browser for the Go
// browser tests: the SBC's own JsSIP web phone in Chromium
// (test/e2e/webphone, test/e2e/webconn), and that page or the SIP.js phone of
// test/browser/sipjs/ in Firefox ESR (test/interop/firefox). Chromium runs
// through playwright-core, Firefox through puppeteer-core (WebDriver BiDi:
// no browser download); the steps are the same for both. The Go tests run
// it through package browser (run.go, next to this file).
//
//   node test/browser/driver.mjs scenario.json    (or the JSON on stdin)
//
// The scenario names the browser and its fake microphone, and the phones:
// one page each (in its own browser context, one browser for all), each
// with a list of steps run in order; the phones run at the same time.
//
//   {
//     "browser": "chromium",                  or "firefox" (default chromium)
//     "chromium": "/usr/bin/chromium",        executable (default this)
//     "firefox": "/usr/bin/firefox-esr",      executable (default this)
//     "audioFile": "/tmp/x/tone.wav",         fake microphone (WAV; Chromium
//                                             only: Firefox's fake microphone
//                                             plays a tone of its own)
//     "secureHosts": ["10.117.2.1"],          Firefox: origins on these
//                                             hosts count as secure contexts
//                                             (getUserMedia over http)
//     "serve": {"addr": "10.117.2.1:8090",    optional: serve static files
//               "dirs": {"/": "/abs/dir/", "/sip.js/": "/abs/lib/"}}
//                                             over http, URL prefix -> dir
//     "ignoreHTTPSErrors": true,              accept any certificate
//     "spki": "base64 sha256 of an SPKI",     trust one certificate key only
//     "timeoutMs": 15000,                     default bound of every wait
//     "hostResolverRules": "MAP a.example 127.0.0.1"   Chromium's resolver
//                                             override (DNS rebinding tests)
//     "phones": [{"name": "p0", "url": "https://127.0.0.1:5061/?...",
//                 "startFile": "/tmp/x/start-p0",   optional: open the
//                                     page once this file exists (bounded
//                                     by "startTimeoutMs", default 10 min)
//                 "steps": [{"do": "call", "target": "echo"}, ...]}]
//   }
//
// Steps (every wait is bounded by its timeoutMs or the scenario's):
//   {"do":"wait", "status":"registered"}   #status / state().status equals
//   {"do":"wait", "call":"in-call"}        state().callState starts with
//   {"do":"waitError"}                     #error shows a non-empty text
//   {"do":"call", "target":"echo"}         webphone.call(target)
//   {"do":"audio", "packets":50, "label":"x", "more":true}
//        waits until inbound packetsReceived >= packets (more: counted
//        from the last audio step) with totalAudioEnergy > 0 and
//        packetsSent > 0; the stats are kept under label
//   {"do":"dtmf", "digits":"123#"}         sendDTMF, waits until sent
//   {"do":"inboundCodec", "label":"x"}     keeps the mimeType of the codec
//                                          the inbound audio RTP is decoded
//                                          with (getStats), e.g. "audio/opus"
//   {"do":"iceRestart"}                    await webphone.iceRestart()
//   {"do":"hangup"} {"do":"close"}         hang up; close the page
//   {"do":"screenshot", "path":"/x.png"}   page screenshot
//   {"do":"sleep", "ms":500}
//   {"do":"mark", "name":"x"}              only reports the event
//   {"do":"waitFile", "path":"/x/go"}      waits until the file exists (the
//                                          Go test's go-ahead after a mark)
//   {"do":"fetch", "url":"http://...", "init":{...}, "label":"x"}
//        runs fetch(url, init) in the page, as the page's own script would;
//        keeps {type, status, body} or {error} under label
//
// Output: one JSON object per line. {"event":"serving"} once the files
// are served (when the scenario serves any), {"event":"launched"} once the
// browser runs, {"event":"loaded","phone":...} once a phone's page has loaded,
// {"event":...,"phone":...} as steps start (the Go test may act on a
// mark), and last {"result":{name: {ok,
// error, step, marks, state, dom, pageErrors}}}. Exit status 0 when every
// phone passed, 1 when one failed, 2 on a setup error.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { serve } from './serve.mjs';

const require = createRequire(new URL('../../web/package.json', import.meta.url));

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readScenario() {
  const src = process.argv[2] ? readFileSync(process.argv[2], 'utf8') : readFileSync(0, 'utf8');
  return JSON.parse(src);
}

function chromiumArgs(sc) {
  const args = [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
  ];
  if (sc.audioFile) args.push('--use-file-for-fake-audio-capture=' + sc.audioFile);
  if (sc.spki) args.push('--ignore-certificate-errors-spki-list=' + sc.spki);
  if (sc.hostResolverRules) args.push('--host-resolver-rules=' + sc.hostResolverRules);
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  return args;
}

// firefoxPrefs are Firefox's stand-ins for Chromium's fake-media flags,
// and the preferences that let a test page over plain http use them.
function firefoxPrefs(sc) {
  const prefs = {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    'media.autoplay.default': 0,
    'media.autoplay.blocking_policy': 0,
  };
  if (sc.secureHosts && sc.secureHosts.length) prefs['dom.securecontext.allowlist'] = sc.secureHosts.join(',');
  return prefs;
}

// launch starts the scenario's browser. It returns {newContext, close}:
// newContext() gives a fresh profile (cookies, storage) with newPage and
// close, the same for both libraries.
async function launch(sc) {
  if (sc.browser === 'firefox') {
    const puppeteer = require('puppeteer-core');
    const b = await puppeteer.launch({
      browser: 'firefox', executablePath: sc.firefox || '/usr/bin/firefox-esr', headless: true,
      acceptInsecureCerts: !!sc.ignoreHTTPSErrors, extraPrefsFirefox: firefoxPrefs(sc),
    });
    return { newContext: () => b.createBrowserContext(), close: () => b.close() };
  }
  const { chromium } = require('playwright-core');
  const b = await chromium.launch({ executablePath: sc.chromium || '/usr/bin/chromium', args: chromiumArgs(sc) });
  return {
    newContext: () => b.newContext({ ignoreHTTPSErrors: !!sc.ignoreHTTPSErrors, permissions: ['microphone'] }),
    close: () => b.close(),
  };
}

// poll evaluates fn in the page until it returns a truthy value.
async function poll(page, what, timeoutMs, fn, arg) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last && last.ok) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

const dom = (page) => page.evaluate(() => {
  const text = (id) => (document.getElementById(id) || {}).textContent || '';
  return { status: text('status'), callState: text('call-state'), error: text('error') };
});

// waitFile waits until path exists (a go-ahead from the Go test).
async function waitFile(path, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${path}`);
    await sleep(50);
  }
}

// steps maps a step's "do" to what it does on a phone.
const steps = {
  async wait(ph, s, t) {
    if (s.status) {
      await poll(ph.page, 'status ' + s.status, t, (want) => {
        const st = window.webphone && window.webphone.state();
        return { ok: !!st && st.status === want && document.getElementById('status').textContent === want, st };
      }, s.status);
    }
    if (s.call) {
      await poll(ph.page, 'call state ' + s.call, t, (want) => {
        const st = window.webphone && window.webphone.state();
        return { ok: !!st && st.callState.startsWith(want) && document.getElementById('call-state').textContent.startsWith(want), st };
      }, s.call);
    }
  },
  async waitError(ph, s, t) {
    const r = await poll(ph.page, '#error text', t, () => {
      const e = document.getElementById('error').textContent.trim();
      return { ok: e !== '', text: e };
    });
    ph.marks[s.label || 'error'] = r.text;
  },
  async call(ph, s) { await ph.page.evaluate((target) => window.webphone.call(target), s.target); },
  async audio(ph, s, t) {
    const base = s.more && ph.lastStats ? ph.lastStats.packetsReceived : 0;
    const r = await poll(ph.page, `${s.packets} packets with audio energy`, t, async (want) => {
      const st = await window.webphone.stats();
      return { ok: st.packetsReceived >= want && st.totalAudioEnergy > 0 && st.packetsSent > 0, st };
    }, base + (s.packets || 1));
    ph.lastStats = r.st;
    ph.marks[s.label || 'audio'] = r.st;
  },
  async dtmf(ph, s, t) {
    await ph.page.evaluate((d) => window.webphone.sendDTMF(d), s.digits);
    // RFC 4733 goes out through the RTCDTMFSender: done when its buffer is.
    await poll(ph.page, 'digits sent', t, () => {
      const pc = window.webphone.pc();
      const sender = pc && pc.getSenders().find((x) => x.dtmf);
      return { ok: !!sender && sender.dtmf.toneBuffer === '', left: sender && sender.dtmf.toneBuffer };
    });
    await sleep(300); // the end packets of the last digit
  },
  async inboundCodec(ph, s, t) {
    const r = await poll(ph.page, 'inbound audio codec', t, async () => {
      const pc = window.webphone.pc();
      if (!pc) return { ok: false };
      const report = await pc.getStats();
      for (const st of report.values()) {
        if (st.type === 'inbound-rtp' && st.kind === 'audio' && st.codecId && report.get(st.codecId)) {
          return { ok: true, mime: report.get(st.codecId).mimeType };
        }
      }
      return { ok: false };
    });
    ph.marks[s.label || 'codec'] = r.mime;
  },
  async iceRestart(ph) { await ph.page.evaluate(() => window.webphone.iceRestart()); },
  async hangup(ph) { await ph.page.evaluate(() => window.webphone.hangup()); },
  async close(ph) { ph.closed = true; await ph.page.close(); },
  async screenshot(ph, s) { await ph.page.screenshot({ path: s.path, fullPage: true }); },
  async sleep(ph, s) { await sleep(s.ms || 0); },
  async mark() {},
  async fetch(ph, s) {
    ph.marks[s.label || 'fetch'] = await ph.page.evaluate(async ({ url, init }) => {
      try {
        const res = await fetch(url, init);
        return { type: res.type, status: res.status, body: await res.text() };
      } catch (e) {
        return { error: String(e) };
      }
    }, { url: s.url, init: s.init || {} });
  },
  async waitFile(ph, s, t) { await waitFile(s.path, t); },
};

async function runPhone(browser, sc, spec) {
  const ph = { name: spec.name, marks: {}, pageErrors: [], closed: false };
  const res = { ok: false, marks: ph.marks, pageErrors: ph.pageErrors };
  if (spec.startFile) {
    try {
      await waitFile(spec.startFile, spec.startTimeoutMs || 600000);
    } catch (e) {
      return { ...res, step: 'start', error: String(e && e.message ? e.message : e) };
    }
  }
  const ctx = await browser.newContext();
  try {
    ph.page = await ctx.newPage();
    ph.page.on('pageerror', (e) => ph.pageErrors.push(String(e)));
    await ph.page.goto(spec.url);
    emit({ event: 'loaded', phone: ph.name });
    for (const [i, s] of (spec.steps || []).entries()) {
      res.step = i + ':' + s.do;
      emit({ event: s.do, phone: ph.name, step: i, name: s.name });
      const fn = steps[s.do];
      if (!fn) throw new Error('unknown step ' + s.do);
      await fn(ph, s, s.timeoutMs || sc.timeoutMs || 15000);
    }
    res.ok = true;
    delete res.step;
  } catch (e) {
    res.error = String(e && e.message ? e.message : e);
    // Now, not only in the result at the end: a test that gives up
    // waiting for this phone lists it (with an audio step's last stats).
    emit({ event: 'failed', phone: ph.name, name: res.error.slice(0, 2000) });
    if (!ph.closed && sc.failureShots) {
      const path = `${sc.failureShots}/${ph.name}-failed.png`;
      await ph.page.screenshot({ path }).then(() => { res.screenshot = path; }, () => {});
    }
  }
  if (!ph.closed) {
    res.state = await ph.page.evaluate(() => window.webphone && window.webphone.state()).catch((e) => String(e));
    res.dom = await dom(ph.page).catch((e) => String(e));
  }
  await ctx.close().catch(() => {});
  return res;
}

async function main() {
  let sc;
  let browser;
  try {
    sc = readScenario();
    if (sc.serve) {
      await serve(sc.serve);
      emit({ event: 'serving' });
    }
    browser = await launch(sc);
    emit({ event: 'launched' });
  } catch (e) {
    emit({ setupError: String(e && e.message ? e.message : e) });
    process.exit(2);
  }
  const results = await Promise.all(sc.phones.map((p) => runPhone(browser, sc, p)));
  await browser.close().catch(() => {});
  const result = {};
  sc.phones.forEach((p, i) => { result[p.name] = results[i]; });
  emit({ result });
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main();
