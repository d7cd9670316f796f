package ha

import (
	"strings"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger adapts log to the *zap.Logger the etcd client takes: the
// client's own messages (reconnects, keep-alive failures, retries) land in
// the agent's log as "etcd" component lines. Debug lines are dropped (the
// client logs every retry backoff at debug).
func zapLogger(log zerolog.Logger) *zap.Logger {
	return zap.New(&zapCore{log: log})
}

// zapCore is a zapcore.Core writing to zerolog.
type zapCore struct {
	log    zerolog.Logger
	fields []zapcore.Field
}

var _ zapcore.Core = (*zapCore)(nil)

func zerologLevel(l zapcore.Level) zerolog.Level {
	switch l {
	case zapcore.DebugLevel:
		return zerolog.DebugLevel
	case zapcore.InfoLevel:
		return zerolog.InfoLevel
	case zapcore.WarnLevel:
		return zerolog.WarnLevel
	case zapcore.ErrorLevel:
		return zerolog.ErrorLevel
	}
	return zerolog.ErrorLevel // DPanic, Panic, Fatal: the client never exits the process through us
}

func (c *zapCore) Enabled(l zapcore.Level) bool {
	zl := zerologLevel(l)
	return l > zapcore.DebugLevel && zl >= c.log.GetLevel() && zl >= zerolog.GlobalLevel()
}

func (c *zapCore) With(fields []zapcore.Field) zapcore.Core {
	return &zapCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *zapCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *zapCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	if err, ok := enc.Fields["error"].(string); ok && strings.Contains(err, "context canceled") {
		return nil // a call we gave up ourselves (leaving, a campaign ended): not news
	}
	ev := c.log.WithLevel(zerologLevel(e.Level))
	if e.LoggerName != "" {
		ev = ev.Str("logger", e.LoggerName)
	}
	ev.Fields(enc.Fields).Msg(e.Message)
	return nil
}

func (c *zapCore) Sync() error { return nil }
