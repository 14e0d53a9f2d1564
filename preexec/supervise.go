package preexec

// #include <stdlib.h>
// #include "supervise.h"
import "C"

import (
	"errors"
	"unsafe"
)

// parseSupervisorRequest runs the supervisor's own decoder (supervise.c)
// on b: the fuzz test of the wire format drives it from Go.
func parseSupervisorRequest(b []byte) (args, env []string, cwd string, uid, gid uint32, err error) {
	buf := C.malloc(C.size_t(len(b) + 1))
	defer C.free(buf)
	copy(unsafe.Slice((*byte)(buf), len(b)+1), b)
	var req C.struct_sv_req
	var msg [256]C.char
	if C.sv_parse((*C.uchar)(buf), C.size_t(len(b)), &req, &msg[0], C.size_t(len(msg))) != 0 {
		return nil, nil, "", 0, 0, errors.New(C.GoString(&msg[0]))
	}
	defer C.sv_free(&req)
	list := func(p **C.char) []string {
		var out []string
		for ; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(p))) {
			out = append(out, C.GoString(*p))
		}
		return out
	}
	return list(req.argv), list(req.envp), C.GoString(req.cwd), uint32(req.uid), uint32(req.gid), nil
}
