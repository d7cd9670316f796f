package main

import "os"

// svcUser is the account the service runs as: LocalSystem on Windows,
// whose rights the folder's ACL grants.
type svcUser struct{ name, group string }

func serviceUser() svcUser { return svcUser{name: "SYSTEM", group: "Administrators"} }

func (svcUser) root() bool                    { return true }
func (svcUser) canWrite(os.FileInfo) bool     { return true }
func (svcUser) canReadWrite(os.FileInfo) bool { return true }
func owner(os.FileInfo) string                { return "(ACL)" }
