// Package loopback is scanagent's one answer to "is this this machine?":
// the HIS API trusts callers on the loopback interface, the configuration
// allows plain HTTP only to a loopback platform or HIS, and the Host-header
// guard always accepts loopback names.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host (a name or an IP, IPv6 with or without
// brackets and zone) is the loopback interface: localhost, 127.0.0.0/8, ::1.
func Host(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr reports whether a host:port (a request's RemoteAddr) or a bare host
// is the loopback interface.
func Addr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return Host(host)
}
