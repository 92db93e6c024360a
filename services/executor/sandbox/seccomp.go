package sandbox

import (
	"encoding/binary"
	"errors"
	"runtime"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Seccomp return actions (linux/seccomp.h).
const (
	seccompRetKillProcess = 0x80000000
	seccompRetErrno       = 0x00050000
	seccompRetAllow       = 0x7fff0000
	auditArchX86_64       = 0xc000003e
	x32SyscallBit         = 0x40000000
)

// nsCloneFlags are the clone flags that create namespaces; the sandbox may
// not make new ones.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// deniedSyscalls fail with EPERM inside the sandbox: debugging other
// processes, mounting, namespaces, kernel keys, eBPF, perf, userfaultfd,
// kexec, kernel modules, reboot, swap, clocks, raw I/O and io_uring.
var deniedSyscalls = []uint32{
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP, unix.SYS_PIDFD_GETFD,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT, unix.SYS_MOUNT_SETATTR,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF,
	unix.SYS_ACCT, unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_LOOKUP_DCOOKIE, unix.SYS_QUOTACTL, unix.SYS_SYSLOG, unix.SYS_VHANGUP, unix.SYS_USELIB,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME, unix.SYS_PERSONALITY,
}

// ErrSeccompUnsupported means no filter is built for this CPU architecture.
var ErrSeccompUnsupported = errors.New("sandbox: seccomp filter is only built for linux/amd64")

// seccompProgram returns the sandbox's seccomp filter as the raw struct
// sock_filter array bwrap reads from --seccomp FD.
//
// It kills the process for any syscall made through a foreign ABI (i386 via
// int 0x80, or x32), answers EPERM for the denied list, for sockets other
// than AF_UNIX and for clone with namespace flags, answers ENOSYS for clone3
// (its flags sit behind a pointer a filter cannot read; libc then falls back
// to clone) and allows the rest.
func seccompProgram() ([]byte, error) {
	if runtime.GOARCH != "amd64" {
		return nil, ErrSeccompUnsupported
	}
	const (
		offNr   = 0
		offArch = 4
		offArg0 = 16 // low 32 bits of args[0] on little-endian
	)
	var prog []bpf.Instruction
	var toDeny []int // indexes of jumps whose true branch goes to the EPERM return
	prog = append(prog,
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArchX86_64, SkipTrue: 1},
		bpf.RetConstant{Val: seccompRetKillProcess},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipFalse: 1},
		bpf.RetConstant{Val: seccompRetKillProcess},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_CLONE3, SkipFalse: 1},
		bpf.RetConstant{Val: seccompRetErrno | uint32(unix.ENOSYS)},
	)
	for _, nr := range deniedSyscalls {
		toDeny = append(toDeny, len(prog))
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr})
	}
	// socket(2) and socketpair(2): only AF_UNIX.
	for _, nr := range []uint32{unix.SYS_SOCKET, unix.SYS_SOCKETPAIR} {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 3},
			bpf.LoadAbsolute{Off: offArg0, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_UNIX, SkipTrue: 1},
		)
		toDeny = append(toDeny, len(prog))
		prog = append(prog,
			bpf.Jump{},
			bpf.LoadAbsolute{Off: offNr, Size: 4},
		)
	}
	// clone(2) with namespace flags.
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_CLONE, SkipFalse: 2},
		bpf.LoadAbsolute{Off: offArg0, Size: 4},
	)
	toDeny = append(toDeny, len(prog))
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: nsCloneFlags},
		bpf.RetConstant{Val: seccompRetAllow},
	)
	deny := len(prog)
	prog = append(prog, bpf.RetConstant{Val: seccompRetErrno | uint32(unix.EPERM)})
	for _, i := range toDeny {
		skip := deny - i - 1
		if skip > 255 {
			return nil, errors.New("sandbox: seccomp filter too long for a BPF jump")
		}
		switch ins := prog[i].(type) {
		case bpf.JumpIf:
			ins.SkipTrue = uint8(skip)
			prog[i] = ins
		case bpf.Jump:
			ins.Skip = uint32(skip)
			prog[i] = ins
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 8*len(raw))
	for _, r := range raw {
		out = binary.LittleEndian.AppendUint16(out, r.Op)
		out = append(out, r.Jt, r.Jf)
		out = binary.LittleEndian.AppendUint32(out, r.K)
	}
	return out, nil
}
