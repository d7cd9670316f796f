package loopback

import "testing"

func TestHostAndAddr(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST.", true}, {"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"[::1]", true},
		{"::1%lo", true}, {"::ffff:127.0.0.1", true},
		{"", false}, {"10.0.0.1", false}, {"192.168.1.5", false}, {"::", false}, {"0.0.0.0", false},
		{"localhost.example.com", false}, {"127.0.0.1.nip.io", false}, {"his.hospital.local", false},
	}
	for _, tt := range tests {
		if got := Host(tt.in); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	addrs := []struct {
		in   string
		want bool
	}{
		{"127.0.0.1:51234", true}, {"[::1]:8080", true}, {"localhost:80", true}, {"127.0.0.1", true},
		{"10.1.2.3:51234", false}, {"[fe80::1]:80", false}, {"garbage", false},
	}
	for _, tt := range addrs {
		if got := Addr(tt.in); got != tt.want {
			t.Errorf("Addr(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
