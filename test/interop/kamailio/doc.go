// Package kamailio tests the SBC with Kamailio in front of it and behind
// it, using the shipped example configurations: configs/kamailio/*.cfg with
// their addresses given as -A defines (the files themselves run unchanged)
// and configs/behind-kamailio-lb.yaml, configs/kamailio-registrar.yaml
// with their addresses replaced by loopback ones from 127.0.6.0/24.
//
//	dispatcher: SIPp UAC → Kamailio LB → SBC node 1 or 2 → SIPp UAS (PBX)
//	registrar:  browsers (JsSIP in Chromium) ⇄ SBC ⇄ Kamailio registrar ⇄ SIPp UAS (PBX)
//
// The tests start Kamailio themselves (kamailio -DD -E, stopped by PID)
// and skip when it is missing, except under CI, where they fail.
package kamailio
