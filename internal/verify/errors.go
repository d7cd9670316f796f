package verify

import "scanagent/internal/card"

// Classify maps a platform resultCode to what to do about it (SPEC §4).
func Classify(code int) card.Class {
	switch code {
	case 21003, 21004:
		return card.TokenExpired
	case 21006, 21002, 21005, 20000, 21001:
		return card.Fatal
	case 10034, 21007:
		return card.RateLimited
	case 10054:
		return card.Duplicate
	case 1, -1, -2, 10001, 10005, -10029, -10044, -110086, 20003:
		return card.Retryable
	}
	return card.Rejected
}

// guideCodes are the resultCodes of the guide's global table (§3.2.12).
// Only these are taken as the platform's own answer when they come with an
// HTTP error status.
var guideCodes = map[int]bool{
	1: true, -1: true, -2: true,
	10001: true, 10002: true, 10003: true, 10004: true, 10005: true, 10006: true, 10007: true, 10008: true,
	10009: true, 10010: true, 10011: true, 10012: true, 10013: true, 10014: true, 10015: true, -10017: true,
	10018: true, -10019: true, 10020: true, 10021: true, -10022: true, -10023: true, -10024: true, -10025: true,
	-10026: true, -10027: true, -10028: true, -10029: true, 10030: true, -10031: true, -10032: true, 10033: true,
	10034: true, 10035: true, 10036: true, 10037: true, -10038: true, -10039: true, -10040: true, 10041: true,
	10042: true, 10043: true, -10044: true, 10048: true, 10050: true, 10051: true, 10053: true, 10054: true,
	10055: true, 10056: true, 10057: true, -110086: true,
	20000: true, 20001: true, 20002: true, 20003: true, 20004: true,
	21001: true, 21002: true, 21003: true, 21004: true, 21005: true, 21006: true, 21007: true,
}
