// phone.mjs: a minimal SIP.js phone with the web phone contract of the
// SBC's JsSIP page (internal/webphone/static/phone.js), so driver.mjs can
// drive either: window.webphone.{state, connect, call, hangup, sendDTMF,
// pc, stats}, and #status / #call-state / #error showing the same texts.
//
// Query parameters: server (ws:// or wss:// URL of the SBC), domain, user,
// password, register=1, autoconnect=1, autoanswer=1. SIP.js's ES modules
// are served under /sip.js/ (web/node_modules/sip.js/lib).
import { Invitation, Inviter, Registerer, RegistererState, SessionState, UserAgent } from '/sip.js/index.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { status: 'disconnected', callState: 'idle', error: '', registered: false, callId: null };
const media = { constraints: { audio: true, video: false } };
let ua = null;
let session = null;

function setStatus(s) { state.status = s; $('status').textContent = s; }
function setCallState(s) { state.callState = s; $('call-state').textContent = s; }
function setError(e) { state.error = e; $('error').textContent = e; }

const server = params.get('server') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const domain = params.get('domain') || location.hostname;
const user = params.get('user') || 'anonymous';

// wire follows a session's states onto the page; an established session's
// remote audio plays in #remote-audio.
function wire(s) {
  session = s;
  state.callId = s.request ? s.request.callId : null;
  s.stateChange.addListener((st) => {
    if (s !== session) return;
    if (st === SessionState.Establishing) setCallState(s instanceof Invitation ? 'incoming' : 'calling');
    if (st === SessionState.Established) {
      const audio = $('remote-audio');
      audio.srcObject = s.sessionDescriptionHandler.remoteMediaStream;
      audio.play().catch(() => {});
      setCallState('in-call');
    }
    if (st === SessionState.Terminated) {
      $('remote-audio').srcObject = null;
      session = null;
      setCallState('ended');
    }
  });
}

async function connect() {
  setStatus('connecting');
  ua = new UserAgent({
    uri: UserAgent.makeURI(`sip:${user}@${domain}`),
    transportOptions: { server },
    authorizationUsername: params.get('user') || undefined,
    authorizationPassword: params.get('password') || undefined,
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] }, iceGatheringTimeout: 2000 },
    logLevel: 'warn',
    delegate: {
      onInvite(invitation) {
        if (session) {
          invitation.reject({ statusCode: 486 });
          return;
        }
        wire(invitation);
        setCallState('incoming');
        if (params.get('autoanswer') === '1') {
          invitation.accept({ sessionDescriptionHandlerOptions: media }).catch((e) => setError(`answer: ${e.message || e}`));
        }
      },
      onDisconnect(e) { setStatus('disconnected'); if (e) setError(`disconnected: ${e.message || e}`); },
    },
  });
  try {
    await ua.start();
  } catch (e) {
    setStatus('disconnected');
    setError(`connect: ${e.message || e}`);
    return;
  }
  setStatus('connected');
  if (params.get('register') === '1') {
    const reg = new Registerer(ua);
    reg.stateChange.addListener((st) => {
      state.registered = st === RegistererState.Registered;
      setStatus(state.registered ? 'registered' : 'connected');
    });
    reg.register().catch((e) => setError(`register: ${e.message || e}`));
  }
}

async function call(target) {
  if (!ua || session) {
    setError(ua ? 'already in a call' : 'not connected');
    return;
  }
  setError('');
  const inviter = new Inviter(ua, UserAgent.makeURI(`sip:${target}@${domain}`), { sessionDescriptionHandlerOptions: media });
  wire(inviter);
  setCallState('calling');
  try {
    await inviter.invite();
  } catch (e) {
    setError(`call: ${e.message || e}`);
  }
}

function hangup() {
  const s = session;
  if (!s) return;
  if (s.state === SessionState.Established) s.bye();
  else if (s instanceof Inviter) s.cancel();
  else s.reject();
}

function sendDTMF(digits) {
  // RFC 4733 through the RTCRtpSender's RTCDTMFSender.
  if (!session || !session.sessionDescriptionHandler || !session.sessionDescriptionHandler.sendDtmf(String(digits), { duration: 160, interToneGap: 70 })) {
    setError('cannot send digits');
  }
}

function pc() {
  return session && session.sessionDescriptionHandler ? session.sessionDescriptionHandler.peerConnection || null : null;
}

// stats sums the audio RTP counters of getStats, as the JsSIP page does.
async function stats() {
  const out = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, totalAudioEnergy: 0 };
  const p = pc();
  if (!p) return out;
  (await p.getStats()).forEach((s) => {
    if (s.kind !== 'audio') return;
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

window.webphone = { state: () => ({ ...state }), connect, call, hangup, sendDTMF, pc, stats };
if (params.get('autoconnect') === '1') connect();
