// serve.mjs: a static file server for pages the SBC does not serve itself
// (the SIP.js phone of test/browser/sipjs/ and SIP.js's ES modules), run by
// driver.mjs inside the browser's network namespace.
//
//   serve({addr: "10.117.2.1:8090", dirs: {"/": "/abs/page/", "/sip.js/": "/abs/lib/"}})
//
// Each URL prefix maps to a directory; the longest prefix wins. Only GET of
// files inside those directories is answered; anything else is 404.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
};

// resolve maps a URL path to a file below one of dirs, or null.
function resolve(dirs, path) {
  const prefixes = Object.keys(dirs).sort((a, b) => b.length - a.length);
  for (const p of prefixes) {
    if (!path.startsWith(p)) continue;
    let rest = decodeURIComponent(path.slice(p.length));
    if (rest === '' || rest.endsWith('/')) rest += 'index.html';
    const root = normalize(dirs[p] + sep);
    const file = normalize(join(root, rest));
    return file.startsWith(root) ? file : null;
  }
  return null;
}

// serve listens on spec.addr (host:port) and resolves once it does.
export function serve(spec) {
  const i = spec.addr.lastIndexOf(':');
  const host = spec.addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(spec.addr.slice(i + 1));
  const server = createServer(async (req, res) => {
    const file = req.method === 'GET' ? resolve(spec.dirs, new URL(req.url, 'http://x').pathname) : null;
    try {
      if (!file) throw new Error('not served');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server));
  });
}
