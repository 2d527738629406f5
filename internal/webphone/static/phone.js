// phone.js: the SBC web phone. Vanilla JavaScript on JsSIP (vendor/
// jssip.min.js, served by the SBC). It defines window.webphone, the API the
// browser tests drive (see .notes/COMMON.md, "Web phone contract").
//
// One UA and at most one call at a time. The page's state lives in `state`
// and is shown through #status, #call-state and #error; every change goes
// through setStatus, setCallState or setError so the DOM and state() agree.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  const state = { status: 'disconnected', callState: 'idle', error: '', registered: false, callId: null };
  const meters = new LevelMeters($('level'), $('remote-level'));
  let cfg = { domain: '', echo: 'echo' }; // from config.json
  let ua = null; // the JsSIP.UA while connected or connecting
  let session = null; // the JsSIP.RTCSession of the current call
  let localStream = null; // the microphone stream of the current call
  let dialing = false; // between a call request and its session (getUserMedia)
  let lastRequest = null; // the INVITE of the call ua.call just made

  // ---- display ----

  function log(msg) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} ${msg}`;
    const list = $('log');
    list.prepend(li);
    while (list.children.length > 30) {
      list.lastChild.remove();
    }
  }

  function setError(msg) {
    state.error = msg;
    $('error').textContent = msg;
    if (msg) {
      log(`error: ${msg}`);
    }
  }

  function setStatus(s) {
    if (state.status !== s) {
      log(`status: ${s}`);
    }
    state.status = s;
    $('status').textContent = s;
    refresh();
  }

  function setCallState(s) {
    if (state.callState !== s) {
      log(`call: ${s}`);
    }
    state.callState = s;
    $('call-state').textContent = s;
    refresh();
  }

  // refresh enables the controls that make sense in the current state.
  function refresh() {
    const connected = state.status === 'connected' || state.status === 'registered' || (ua !== null && ua.isConnected());
    const busy = session !== null || dialing;
    const up = state.callState === 'in-call' || state.callState === 'on-hold';
    $('connect').disabled = ua !== null;
    $('disconnect').disabled = ua === null;
    $('call').disabled = !connected || busy;
    $('test-call').disabled = !connected || busy;
    $('hangup').disabled = !busy;
    $('mute').disabled = !up;
    $('hold').disabled = !up;
    $('incoming').hidden = state.callState !== 'incoming';
  }

  function setPressed(id, on) {
    $(id).setAttribute('aria-pressed', on ? 'true' : 'false');
  }

  // ---- errors in plain words ----

  // socketError explains a WebSocket that did not open. Browsers do not
  // tell a refused connection from an untrusted certificate, so it names
  // both and the fix for the second.
  function socketError(server) {
    let origin = server;
    try {
      const u = new URL(server);
      origin = `${u.protocol === 'ws:' ? 'http:' : 'https:'}//${u.host}/`;
    } catch (e) {
      // keep the text as typed
    }
    return `Cannot reach the SBC at ${server}: the WebSocket was refused or the certificate is not trusted. ` +
      `Open ${origin} in this browser and accept the certificate, then retry.`;
  }

  function micError(e) {
    switch (e && e.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'Microphone access was denied: allow the microphone for this page in the browser ' +
          '(the icon in the address bar), then retry.';
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'No microphone was found: connect one, then retry.';
      case 'NotReadableError':
      case 'AbortError':
        return 'The microphone cannot be opened: another program may be using it.';
      case 'InsecureContext':
        return 'Microphone access needs a secure page: open the web phone over HTTPS.';
      default:
        return `The microphone cannot be used: ${e && e.message ? e.message : e}`;
    }
  }

  // responseText is "486 Busy Here" for a SIP response, else "".
  function responseText(msg) {
    return msg && msg.status_code ? `${msg.status_code} ${msg.reason_phrase || ''}`.trim() : '';
  }

  // ---- connection ----

  function randomToken() {
    const b = new Uint8Array(6);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function domain() {
    return $('domain').value.trim() || location.hostname;
  }

  // connect starts a UA: anonymous (sip:anonymous-<random>@domain, never
  // registered) when no user is given, else the user, registered when the
  // register box is ticked.
  function connect() {
    if (ua) {
      return;
    }
    if (typeof JsSIP === 'undefined') {
      setError('JsSIP did not load (vendor/jssip.min.js): reload the page.');
      setStatus('error');
      return;
    }
    setError('');
    const server = $('server').value.trim();
    const name = $('user').value.trim();
    const anonymous = name === '';
    const user = anonymous ? `anonymous-${randomToken()}` : name;
    const uri = user.includes('@') ? (user.startsWith('sip:') ? user : `sip:${user}`) : `sip:${user}@${domain()}`;
    const conf = { uri, register: !anonymous && $('register').checked, user_agent: `SBC web phone (JsSIP ${JsSIP.version})` };
    if ($('password').value) {
      conf.password = $('password').value;
    }
    if ($('display').value.trim()) {
      conf.display_name = $('display').value.trim();
    }
    let u;
    try {
      conf.sockets = [new JsSIP.WebSocketInterface(server)];
      u = new JsSIP.UA(conf);
    } catch (e) {
      setError(`Cannot connect: ${e.message || e} (check the server URL, user and domain).`);
      setStatus('error');
      return;
    }
    ua = u;
    wireUA(u, server);
    log(`connecting to ${server} as ${uri}`);
    setStatus('connecting');
    u.start();
  }

  function wireUA(u, server) {
    // Events of a UA that is no longer ours (after disconnect) are ignored.
    const on = (ev, fn) => u.on(ev, (e) => { if (u === ua) fn(e); });
    // A connection that never opened is a wrong URL or an untrusted
    // certificate: say so and stop. One that opened and then dropped (a
    // network change) is JsSIP's to reconnect, and a call in progress
    // goes on meanwhile: its media never went through the WebSocket, and
    // the SBC keeps it for the reconnection (sip.flow_grace).
    let opened = false;
    on('connecting', () => setStatus('connecting'));
    on('connected', () => {
      opened = true;
      setStatus(state.registered ? 'registered' : 'connected');
    });
    on('disconnected', (e) => {
      state.registered = false;
      if (e && e.error && !opened) {
        setError(socketError(server));
        stopUA();
        setStatus('error');
      } else {
        setStatus('connecting'); // JsSIP reconnects
      }
    });
    on('registered', () => {
      state.registered = true;
      setStatus('registered');
    });
    on('unregistered', () => {
      state.registered = false;
      setStatus(u.isConnected() ? 'connected' : 'disconnected');
    });
    on('registrationFailed', (e) => {
      state.registered = false;
      const why = responseText(e.response) || e.cause || 'no reason given';
      setError(`Registration failed: ${why}.`);
      setStatus('error');
    });
    on('newRTCSession', (e) => {
      if (e.originator === 'local') {
        lastRequest = e.request; // call() takes the session
        return;
      }
      incoming(e.session, e.request);
    });
  }

  // stopUA drops the UA at once; its later events are ignored.
  function stopUA() {
    const u = ua;
    ua = null;
    state.registered = false;
    if (u) {
      try {
        u.stop();
      } catch (e) {
        // already stopped
      }
    }
  }

  function disconnect() {
    if (!ua) {
      return;
    }
    if (session) {
      hangup();
    }
    stopUA();
    setStatus('disconnected');
  }

  // ---- calls ----

  async function microphone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error('no mediaDevices'), { name: 'InsecureContext' });
    }
    return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  }

  function callOptions(stream) {
    return {
      mediaStream: stream,
      mediaConstraints: { audio: true, video: false },
      // The SBC is ICE-lite with host candidates: no STUN or TURN needed.
      pcConfig: { iceServers: [] },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    };
  }

  async function call(target) {
    target = String(target === undefined ? $('target').value : target).trim();
    if (!ua || !ua.isConnected()) {
      setError('Not connected: connect to the SBC first.');
      return;
    }
    if (session || dialing) {
      setError('A call is already in progress: hang up first.');
      return;
    }
    if (!target) {
      setError('Enter a number or SIP URI to call.');
      return;
    }
    setError('');
    dialing = true;
    setCallState('calling');
    let stream;
    try {
      stream = await microphone();
    } catch (e) {
      dialing = false;
      setError(micError(e));
      setCallState(`ended (${e && e.name === 'NotAllowedError' ? 'microphone denied' : 'microphone unavailable'})`);
      return;
    }
    if (!dialing || !ua) { // hung up or disconnected meanwhile
      stream.getTracks().forEach((t) => t.stop());
      dialing = false;
      setCallState('ended (hangup)');
      return;
    }
    dialing = false;
    localStream = stream;
    let s;
    try {
      s = ua.call(target, callOptions(stream));
    } catch (e) {
      setError(`Cannot call ${target}: ${e.message || e}`);
      cleanup('ended (invalid target)');
      return;
    }
    log(`calling ${target}`);
    attach(s, lastRequest);
  }

  function testCall() {
    const echo = cfg.echo || 'echo';
    call(echo.includes(':') || echo.includes('@') ? echo : `sip:${echo}@${domain()}`);
  }

  function incoming(s, request) {
    if (session || dialing) {
      s.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      log(`rejected a second call from ${s.remote_identity.uri}`);
      return;
    }
    const id = s.remote_identity;
    $('caller').textContent = id.display_name ? `${id.display_name} <${id.uri}>` : String(id.uri);
    attach(s, request);
    setCallState('incoming');
    if (params.get('autoanswer') === '1') {
      answer();
    }
  }

  async function answer() {
    const s = session;
    if (!s || s.direction !== 'incoming' || state.callState !== 'incoming') {
      return;
    }
    let stream;
    try {
      stream = await microphone();
    } catch (e) {
      setError(micError(e));
      s.terminate({ status_code: 480, reason_phrase: 'Temporarily Unavailable' });
      return;
    }
    if (session !== s || s.isEnded()) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    localStream = stream;
    s.answer(callOptions(stream));
  }

  function reject() {
    if (session && state.callState === 'incoming') {
      session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
    }
  }

  function hangup() {
    if (dialing) {
      dialing = false; // call() sees it after getUserMedia
      return;
    }
    if (session && !session.isEnded()) {
      session.terminate();
    }
  }

  // attach makes s the current call and follows its events.
  function attach(s, request) {
    session = s;
    state.callId = (request && request.call_id) || null;
    if (s.connection) {
      wirePC(s.connection);
    }
    const on = (ev, fn) => s.on(ev, (e) => { if (s === session) fn(e); });
    on('peerconnection', (e) => wirePC(e.peerconnection));
    on('progress', (e) => {
      if (e.originator === 'remote') {
        setCallState('ringing');
      }
    });
    on('accepted', () => setCallState('in-call'));
    on('confirmed', () => setCallState(s.isOnHold().local ? 'on-hold' : 'in-call'));
    on('hold', () => holdChanged(s));
    on('unhold', () => holdChanged(s));
    on('muted', () => setPressed('mute', true));
    on('unmuted', () => setPressed('mute', false));
    on('failed', (e) => {
      const code = responseText(e.message);
      if (code && e.originator === 'remote') {
        setError(`Call rejected: ${code}`);
      } else if (e.cause !== JsSIP.C.causes.CANCELED && e.cause !== JsSIP.C.causes.REJECTED) {
        setError(`Call failed: ${e.cause}`);
      }
      cleanup(`ended (${code || e.cause})`);
    });
    on('ended', (e) => {
      let why = e.cause;
      if (e.cause === JsSIP.C.causes.BYE) {
        why = e.originator === 'remote' ? 'remote hangup' : 'hangup';
      } else if (e.originator === 'local' && e.cause === 'Terminated') {
        why = 'hangup';
      }
      cleanup(`ended (${why})`);
    });
    refresh();
  }

  function holdChanged(s) {
    const h = s.isOnHold();
    setPressed('hold', h.local);
    setCallState(h.local || h.remote ? 'on-hold' : 'in-call');
  }

  // wirePC plays and meters the received audio and meters the microphone.
  function wirePC(pc) {
    if (pc.__webphone) {
      return;
    }
    pc.__webphone = true;
    meters.usePeerConnection(pc);
    if (localStream) {
      meters.watch('local', localStream);
    }
    pc.addEventListener('track', (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      const audio = $('remote-audio');
      audio.srcObject = stream;
      audio.play().catch(() => log('the browser blocked playback: click the page to hear the call'));
      meters.watch('remote', stream);
    });
    pc.addEventListener('iceconnectionstatechange', () => log(`ice: ${pc.iceConnectionState}`));
  }

  function cleanup(finalState) {
    session = null;
    dialing = false;
    if (localStream) {
      localStream.getTracks().forEach((t) => t.stop());
      localStream = null;
    }
    $('remote-audio').srcObject = null;
    meters.stop();
    setPressed('mute', false);
    setPressed('hold', false);
    setCallState(finalState);
  }

  // ---- in-call controls ----

  function sendDTMF(digits) {
    digits = String(digits);
    if (!session || !(state.callState === 'in-call' || state.callState === 'on-hold')) {
      setError('No call to send digits to.');
      return;
    }
    try {
      // RFC 4733 telephone-events through the RTCRtpSender's DTMF sender.
      session.sendDTMF(digits, { transportType: 'RFC2833', duration: 160, interToneGap: 70 });
      log(`dtmf: ${digits}`);
    } catch (e) {
      setError(`Cannot send digits: ${e.message || e}`);
    }
  }

  function mute(on) {
    if (!session) {
      return;
    }
    if (on) {
      session.mute({ audio: true });
    } else {
      session.unmute({ audio: true });
    }
  }

  function hold(on) {
    if (!session) {
      return;
    }
    const ok = on ? session.hold() : session.unhold();
    if (!ok) {
      log(on ? 'hold not possible now' : 'resume not possible now');
    }
  }

  function iceRestart() {
    return new Promise((resolve, reject) => {
      if (!session) {
        reject(new Error('no call'));
        return;
      }
      const ok = session.renegotiate({ rtcOfferConstraints: { iceRestart: true } }, resolve);
      if (!ok) {
        reject(new Error('cannot renegotiate now'));
      }
    });
  }

  function pc() {
    return session && session.connection ? session.connection : null;
  }

  async function stats() {
    const out = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, totalAudioEnergy: 0 };
    const p = pc();
    if (!p) {
      return out;
    }
    (await p.getStats()).forEach((s) => {
      if (s.kind !== 'audio') {
        return;
      }
      if (s.type === 'inbound-rtp') {
        out.packetsReceived += s.packetsReceived || 0;
        out.bytesReceived += s.bytesReceived || 0;
        out.totalAudioEnergy += s.totalAudioEnergy || 0;
      } else if (s.type === 'outbound-rtp') {
        out.packetsSent += s.packetsSent || 0;
      }
    });
    return out;
  }

  // ---- start ----

  function prefill() {
    const scheme = location.protocol === 'http:' ? 'ws:' : 'wss:';
    $('server').value = params.get('server') || `${scheme}//${location.host}`;
    $('domain').value = params.get('domain') || cfg.domain || location.hostname;
    $('user').value = params.get('user') || '';
    $('password').value = params.get('password') || '';
    $('display').value = params.get('display') || '';
    $('register').checked = params.get('register') === '1';
    $('target').value = params.get('target') || '';
  }

  function bind() {
    $('account').addEventListener('submit', (e) => { e.preventDefault(); connect(); });
    $('disconnect').addEventListener('click', disconnect);
    $('dial').addEventListener('submit', (e) => { e.preventDefault(); call(); });
    $('test-call').addEventListener('click', testCall);
    $('hangup').addEventListener('click', hangup);
    $('answer').addEventListener('click', answer);
    $('reject').addEventListener('click', reject);
    $('mute').addEventListener('click', () => mute($('mute').getAttribute('aria-pressed') !== 'true'));
    $('hold').addEventListener('click', () => hold($('hold').getAttribute('aria-pressed') !== 'true'));
    $('keypad').addEventListener('click', (e) => {
      const d = e.target.closest('[data-digit]');
      if (d) {
        sendDTMF(d.dataset.digit);
      }
    });
    // Digits typed anywhere but in a text field go out as DTMF during a call.
    document.addEventListener('keydown', (e) => {
      const typing = e.target instanceof HTMLInputElement;
      if (!typing && session && /^[0-9*#]$/.test(e.key)) {
        sendDTMF(e.key);
      }
    });
    // A click is the user gesture WebAudio waits for.
    document.addEventListener('click', () => meters.resume());
  }

  async function loadConfig() {
    try {
      const r = await fetch('config.json', { cache: 'no-cache' });
      if (r.ok) {
        cfg = Object.assign(cfg, await r.json());
      }
    } catch (e) {
      log('config.json not available: using the page\'s host name as domain');
    }
  }

  window.webphone = {
    state: () => ({ ...state }),
    connect, disconnect, call, hangup, answer, reject, sendDTMF, mute, hold, iceRestart, pc, stats,
  };

  bind();
  refresh();
  loadConfig().then(() => {
    prefill();
    if (params.get('autoconnect') === '1') {
      connect();
    }
  });
})();
