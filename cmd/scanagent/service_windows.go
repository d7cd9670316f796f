package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"scanagent/internal/config"
)

// Recovery, as the MSI sets it too (packaging/windows/scanagent.wxs runs
// `sc.exe failure scanagent reset= 86400 actions= restart/5000/restart/30000/restart/60000`):
// restart 5 s after the first failure, 30 s after the second, 60 s after
// every later one; the failure count resets after a day without failure.
var recoveryActions = []mgr.RecoveryAction{
	{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
}

const recoveryResetSeconds = 24 * 60 * 60

// dataDirSDDL: SYSTEM and Administrators, full control, inherited by every
// file and folder below; protected, so ProgramData's "Users: read" is not
// inherited. The outbox holds patients' identities.
const dataDirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// Event IDs as kardianos uses them; the source's message file is
// EventCreate.exe (registered by the MSI and by `scanagent install`), whose
// messages 1–1000 print the text as given.
const (
	eventInfo    = 1
	eventWarning = 2
	eventError   = 3
)

// runUnderServiceManager runs service-run as a Windows service when the SCM
// started it, and reports false when it runs in a console (the caller then
// runs it in the foreground, through kardianos).
func runUnderServiceManager(p *program, loadErr error) (bool, error) {
	if !startedBySCM() {
		return false, nil
	}
	el, err := eventlog.Open(serviceName)
	if err == nil {
		defer el.Close()
	}
	logger := eventLogger{el}
	h := &scmHandler{p: p, loadErr: loadErr, log: logger}
	err = svc.Run(serviceName, h)
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		return false, nil // a console, not the SCM
	}
	if err != nil {
		_ = logger.Errorf("scanagent: the service dispatcher failed: %v", err)
		return true, err
	}
	if h.failed != nil {
		return true, h.failed
	}
	return true, nil
}

// startedBySCM: our parent is services.exe. svc.IsWindowsService also
// wants it in session 0, which Wine's is not; asking the SCM directly
// (StartServiceCtrlDispatcher) blocks in a console under Wine.
func startedBySCM() bool {
	if ok, err := svc.IsWindowsService(); err == nil && ok {
		return true
	}
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return false
	}
	defer windows.CloseHandle(snap)
	self, parent := windows.GetCurrentProcessId(), uint32(0)
	names := map[uint32]string{}
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		names[e.ProcessID] = windows.UTF16ToString(e.ExeFile[:])
		if e.ProcessID == self {
			parent = e.ParentProcessID
		}
	}
	return parent != 0 && strings.EqualFold(filepath.Base(names[parent]), "services.exe")
}

type scmHandler struct {
	p       *program
	loadErr error
	log     eventLogger
	failed  error
}

// Execute is the service's life under the SCM. A configuration that does
// not load, or a start that fails, ends it with a service-specific exit code
// and an event; the SCM's recovery (restart after 5/30/60 s, also on
// non-crash failures) retries, so fixing the file heals the service.
func (h *scmHandler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 10000}
	if err := ensureRecovery(false); err != nil {
		_ = h.log.Warningf("scanagent: could not set the service's recovery actions: %v", err)
	}
	if h.loadErr != nil {
		h.failed = h.loadErr
		_ = h.log.Errorf("scanagent cannot start: %v", h.loadErr)
		return true, 1
	}
	h.p.logger = h.log
	restrictDataDirs(h.p.cfg, h.log)
	if err := h.p.Start(nil); err != nil {
		h.failed = err
		_ = h.log.Errorf("scanagent cannot start: %v", err)
		return true, 2
	}
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for c := range req {
		switch c.Cmd {
		case svc.Interrogate:
			status <- c.CurrentStatus
		case svc.Stop, svc.Shutdown:
			wait := h.p.cfg.Agent.ShutdownTimeout.D() + 5*time.Second
			status <- svc.Status{State: svc.StopPending, WaitHint: uint32(wait / time.Millisecond)}
			_ = h.p.Stop(nil)
			return false, 0
		}
	}
	return false, 0
}

// restrictDataDirs runs at every start under the SCM (as ensureRecovery
// does); each acts only the first time, or after an upgrade from a version
// that did not, so an administrator's later, deliberate changes stay.
func restrictDataDirs(cfg config.Config, log eventLogger) {
	for _, dir := range dataDirs(cfg) {
		changed, err := restrictDir(dir)
		switch {
		case err != nil:
			_ = log.Warningf("scanagent: could not restrict access to %s to SYSTEM and Administrators: %v", dir, err)
		case changed:
			_ = log.Infof("scanagent: access to %s restricted to SYSTEM and Administrators", dir)
		}
	}
}

// configureInstalledService completes `scanagent install`: recovery actions
// (kardianos sets one; we want three, also on non-crash failures) and the
// data directory's ACL, before the service first starts.
func configureInstalledService(cfg config.Config) error {
	if err := ensureRecovery(true); err != nil {
		return err
	}
	for _, dir := range dataDirs(cfg) {
		if _, err := restrictDir(dir); err != nil {
			return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", dir, err)
		}
	}
	return nil
}

// dataDirs: the agent's state directory and the outbox's, once each.
func dataDirs(cfg config.Config) []string {
	var dirs []string
	for _, d := range []string{cfg.Agent.DataDir, filepath.Dir(cfg.Queue.Path)} {
		if d == "" || d == "." {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		dup := false
		for _, x := range dirs {
			dup = dup || x == abs
		}
		if !dup {
			dirs = append(dirs, abs)
		}
	}
	return dirs
}

// restrictDir gives dir (created if missing) the protected DACL
// dataDirSDDL, unless its DACL is protected already (set by us before, or
// deliberately by an administrator). SetNamedSecurityInfo propagates the
// inheritable entries to the files already inside (config, outbox).
func restrictDir(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	cur, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return false, err
	}
	if ctl, _, err := cur.Control(); err == nil && ctl&windows.SE_DACL_PROTECTED != 0 {
		return false, nil
	}
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		return false, err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return false, err
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	return err == nil, err
}

// ensureRecovery sets the recovery actions, recovery on non-crash failures
// (a start that fails, a stop with an error) and, for an automatic service,
// the delayed start — always when force (just installed), otherwise only
// when the service has no recovery actions yet (its first start after the
// MSI installed it, or after an upgrade from a version without them).
func ensureRecovery(force bool) error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return err
	}
	defer s.Close()
	if !force {
		if cur, err := s.RecoveryActions(); err == nil && len(cur) > 0 {
			return nil
		}
	}
	if err := s.SetRecoveryActions(recoveryActions, recoveryResetSeconds); err != nil {
		return fmt.Errorf("recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil && !unsupportedByThisSCM(err) {
		return fmt.Errorf("recovery on non-crash failures: %w", err)
	}
	// The flag only matters to an automatic service (the SCM ignores it
	// otherwise), so a service set to manual stays manual.
	info := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	err = windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&info)))
	if err != nil && !unsupportedByThisSCM(err) {
		return fmt.Errorf("delayed automatic start: %w", err)
	}
	return nil
}

// unsupportedByThisSCM: every supported Windows (10 / Server 2016 and
// later) has the delayed start and the non-crash-failure flag; Wine's SCM
// answers "invalid level" to both, and the service then runs without them.
func unsupportedByThisSCM(err error) bool { return errors.Is(err, windows.ERROR_INVALID_LEVEL) }

// eventLogger writes to the Windows event log (source "scanagent"); with
// no event log it drops the messages (a service has no console).
type eventLogger struct{ el *eventlog.Log }

func (l eventLogger) write(id uint32, kind string, msg string) error {
	if l.el == nil {
		return nil
	}
	switch kind {
	case "error":
		return l.el.Error(id, msg)
	case "warning":
		return l.el.Warning(id, msg)
	}
	return l.el.Info(id, msg)
}

func (l eventLogger) Error(v ...interface{}) error {
	return l.write(eventError, "error", fmt.Sprint(v...))
}
func (l eventLogger) Warning(v ...interface{}) error {
	return l.write(eventWarning, "warning", fmt.Sprint(v...))
}
func (l eventLogger) Info(v ...interface{}) error {
	return l.write(eventInfo, "info", fmt.Sprint(v...))
}
func (l eventLogger) Errorf(f string, a ...interface{}) error {
	return l.write(eventError, "error", fmt.Sprintf(f, a...))
}
func (l eventLogger) Warningf(f string, a ...interface{}) error {
	return l.write(eventWarning, "warning", fmt.Sprintf(f, a...))
}
func (l eventLogger) Infof(f string, a ...interface{}) error {
	return l.write(eventInfo, "info", fmt.Sprintf(f, a...))
}
