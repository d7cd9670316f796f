package card

import (
	"maps"
	"slices"
)

// Scenes is the guide's 用卡环节表 (§3.3.1): the values of reportHISData's
// scene and verifyQRCode's medicalStep / useScene.
var scenes = map[string]string{
	"010101": "挂号", "0101011": "预约挂号", "0101012": "当日挂号", "0101013": "挂号记录", "0101014": "预约导诊",
	"0101015": "当日取号", "010102": "诊断", "0101021": "排队候诊", "0101022": "门诊记录", "0101023": "病历打印",
	"010103": "取药", "0101031": "取药记录", "010104": "检查", "0101041": "预约检查", "0101042": "预约检查记录",
	"010105": "收费", "0101051": "门诊缴费", "0101052": "门诊缴费记录", "0101053": "住院缴费", "0101054": "住院缴费记录",
	"0101055": "门诊充值", "0101056": "住院充值", "010106": "开方", "010108": "取（查询）报告",
	"0101081": "取（查询）检查报告", "0101082": "取（查询）检验报告", "0101083": "取（查询）体检报告",
	"010109": "住院登记", "00000": "其他", "00001": "便民服务", "00002": "孕期保健", "00003": "儿童保健",
	"00004": "家庭医生", "00005": "在线问诊", "00006": "计划免疫", "00007": "个人信息",
}

// cardTypes is the 证件类型表 (§3.3.2).
var cardTypes = map[string]string{
	"01": "居民身份证", "02": "居民户口簿", "03": "护照", "04": "军官证", "05": "驾驶证",
	"06": "港澳居民来往内地通行证", "07": "台湾居民来往内地通行证", "08": "出生医学证明",
	"09": "医保卡", "10": "就诊卡", "11": "健康卡", "99": "其他法定有效证件",
}

// channels is the 用卡渠道表 (§3.3.3).
var channels = map[string]string{
	"0100": "人工窗口", "0200": "自助机", "0300": "医生工作台", "0400": "微信渠道", "0401": "服务号", "0402": "小程序", "0000": "其他",
}

// feeTypes is the 用卡费别表 (§3.3.4).
var feeTypes = map[string]string{"0100": "自费", "0200": "医保", "0300": "公费", "0000": "其他"}

// CardTypeHealthCard is 证件类型 11 健康卡: a report that carries a
// qrCodeText instead of an ID number and name.
const CardTypeHealthCard = "11"

// CardTypeIDCard is 证件类型 01 居民身份证.
const CardTypeIDCard = "01"

// SceneName returns the name of a 用卡环节 code and whether the guide knows it.
func SceneName(code string) (string, bool) { n, ok := scenes[code]; return n, ok }

// CardTypeName returns the name of a 证件类型 code and whether the guide knows it.
func CardTypeName(code string) (string, bool) { n, ok := cardTypes[code]; return n, ok }

// channelAliases are the names reportHISData's own description gives a
// channel (§3.2.7: "服务号、app、窗口等"; its example sends "服务号"), by
// the code of the table they fall under.
var channelAliases = map[string]string{"窗口": "0100", "app": "0000", "APP": "0000", "App": "0000", "支付宝": "0000"}

// ChannelCode returns the 用卡渠道 code (§3.3.3) of s, a code of the table,
// a name of the table ("服务号") or a name reportHISData's description uses
// ("窗口", "app"), and whether it is one. Reports carry the code.
func ChannelCode(s string) (string, bool) {
	if _, ok := channels[s]; ok {
		return s, true
	}
	for code, name := range channels {
		if name == s {
			return code, true
		}
	}
	code, ok := channelAliases[s]
	return code, ok
}

// ChannelName returns the name of a 用卡渠道 code and whether the guide knows it.
func ChannelName(code string) (string, bool) { n, ok := channels[code]; return n, ok }

// FeeTypeName returns the name of a 费别 code and whether the guide knows it.
func FeeTypeName(code string) (string, bool) { n, ok := feeTypes[code]; return n, ok }

// SceneNeedsDepartment reports whether reportHISData requires a department
// for the scene (§3.2.7: 挂号, 预约挂号, 当日挂号).
func SceneNeedsDepartment(scene string) bool {
	return scene == "010101" || scene == "0101011" || scene == "0101012"
}

// Scenes, CardTypes and Channels list the known codes in order, for error
// messages and documentation.
func Scenes() []string    { return slices.Sorted(maps.Keys(scenes)) }
func CardTypes() []string { return slices.Sorted(maps.Keys(cardTypes)) }
func Channels() []string  { return slices.Sorted(maps.Keys(channels)) }
