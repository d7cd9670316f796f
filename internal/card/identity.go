package card

// Request is what is to be verified: the code, and the use the verification
// records (verifyQRCode is a dynamic code's usage record, guide §3.2.11).
// Its JSON is the gateway wire's verify request.
type Request struct {
	Kind Kind `json:"kind"`
	// Text is the qrCodeText or Su Kang Code URL.
	Text string `json:"qrCodeText,omitempty"`
	// IDNumber is set for ID card numbers.
	IDNumber string `json:"idNumber,omitempty"`
	// MedicalStep overrides the configured 用卡环节 for verifyQRCode.
	MedicalStep string `json:"medicalStep,omitempty"`
	// UseScene and UseChannel are verifyQRCode's optional 使用场景 (a
	// 用卡环节 code) and 用卡渠道, sent when set.
	UseScene   string `json:"useScene,omitempty"`
	UseChannel string `json:"useChannel,omitempty"`
	// TerminalID overrides the configured terminal (set by a gateway from
	// the authenticated terminal).
	TerminalID string `json:"terminalId,omitempty"`
}

// Identity is a patient's identity: what a platform answered for a code, or
// what the code itself carries when it is not verified online. Its JSON is
// the HIS contract's identity.
type Identity struct {
	Name         string `json:"name,omitempty"`
	Gender       string `json:"gender,omitempty"`
	Nation       string `json:"nation,omitempty"`
	Birthday     string `json:"birthday,omitempty"`
	IDType       string `json:"idType,omitempty"`
	IDNumber     string `json:"idNumber,omitempty"`
	Phone        string `json:"phone,omitempty"`
	Address      string `json:"address,omitempty"`
	PHID         string `json:"phid,omitempty"`
	HealthCardID string `json:"healthCardId,omitempty"`
	PatID        string `json:"patid,omitempty"`
	QRCodeText   string `json:"qrCodeText,omitempty"`
	// CustomType is the configured type of a custom code.
	CustomType string `json:"customType,omitempty"`
	// Level is the Su Kang Code colour (green, yellow, red) and Tip its text.
	Level string `json:"level,omitempty"`
	Tip   string `json:"tip,omitempty"`
}
