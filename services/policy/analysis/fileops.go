package analysis

import "strings"

// pathMethods are pathlib.Path methods that touch the file system; the
// receiver's path is worked out for them.
var pathMethods = map[string]bool{
	"write_text": true, "write_bytes": true, "touch": true, "mkdir": true, "unlink": true, "rmdir": true,
	"rename": true, "replace": true, "read_text": true, "read_bytes": true, "open": true, "symlink_to": true,
	"hardlink_to": true, "chmod": true, "glob": true, "rglob": true, "iterdir": true,
}

// pathSpecific are Path methods no other common type has, so even with an
// unknown receiver they are file operations.
var pathSpecific = map[string]FileOpKind{
	"write_text": FileWrite, "write_bytes": FileWrite, "touch": FileWrite, "mkdir": FileWrite,
	"symlink_to": FileWrite, "hardlink_to": FileWrite, "unlink": FileDelete, "rmdir": FileDelete,
	"read_text": FileRead, "read_bytes": FileRead,
}

// writerMethods write a file named by their first argument, whatever the
// receiver (DataFrame.to_csv, Workbook.save, Figure.savefig).
var writerMethods = map[string][]string{
	"to_csv": {"path_or_buf"}, "to_excel": {"excel_writer"}, "to_json": {"path_or_buf"},
	"to_parquet": {"path"}, "to_pickle": {"path"}, "to_feather": {"path"}, "to_html": {"buf"},
	"to_xml": {"path_or_buffer"}, "to_latex": {"buf"}, "to_hdf": {"path_or_buf"}, "to_stata": {"path"},
	"to_orc": {"path"}, "to_markdown": {"buf"}, "to_string": {"buf"}, "tofile": {"fid", "file"},
	"savefig": {"fname"}, "save": {"filename", "fp", "path"},
}

// pathArg returns the value of a call's argument at index i or keyword
// names, and whether it is there.
func pathArg(c Call, i int, names ...string) (Value, bool) {
	if i < len(c.Args) {
		return c.Args[i], true
	}
	for _, n := range names {
		if v, ok := c.Kwargs[n]; ok {
			return v, true
		}
	}
	return unknown, false
}

func (w *walker) op(c Call, kind FileOpKind, v Value, call string) {
	w.f.FileOps = append(w.f.FileOps, FileOp{Span: c.Span, Kind: kind, Path: v, Call: call})
}

// fileOps records the reads, writes and deletions a call makes.
func (w *walker) fileOps(_ int32, names []string, method string, _ []int32, _ kwArgs, c Call) {
	for _, q := range names {
		if w.namedFileOp(c, q) {
			return
		}
	}
	if len(names) > 0 && !strings.Contains(names[0], ".") && method == names[0] {
		return // a builtin that is not a file operation
	}
	if _, ok := writerMethods[method]; ok && len(names) == 0 && c.Receiver {
		if v, ok := pathArg(c, 0, writerMethods[method]...); ok {
			w.op(c, FileWrite, v, method)
		}
		return
	}
	if !pathMethods[method] || len(names) > 0 {
		return
	}
	recv := c.ReceiverPath
	switch method {
	case "rename", "replace":
		// Path.replace(target) takes one argument; str.replace takes two.
		if recv.Known && len(c.Args)+len(c.Kwargs) == 1 {
			w.op(c, FileDelete, recv, method)
			if v, ok := pathArg(c, 0, "target"); ok {
				w.op(c, FileWrite, v, method)
			}
		}
	case "open":
		if recv.Known {
			mode, _ := pathArg(c, 0, "mode")
			w.op(c, openKind(mode, true), recv, method)
		}
	case "glob", "rglob", "iterdir":
		if recv.Known {
			w.op(c, FileRead, recv, method)
		}
	case "chmod":
		if recv.Known {
			w.op(c, FileWrite, recv, method)
		}
	default:
		if k, ok := pathSpecific[method]; ok {
			w.op(c, k, recv, method)
		}
	}
}

// openKind classifies an open() mode: read unless it writes, appends,
// creates or updates; an unknown mode counts as a write.
func openKind(mode Value, present bool) FileOpKind {
	if !present || (mode.Exact && mode.Text == "") {
		return FileRead
	}
	if !mode.Exact {
		return FileWrite
	}
	if strings.ContainsAny(mode.Text, "wax+") {
		return FileWrite
	}
	return FileRead
}

// namedFileOp handles calls known by qualified name; it reports whether
// the name was one.
func (w *walker) namedFileOp(c Call, q string) bool {
	switch q {
	case "open", "io.open", "codecs.open", "io.FileIO", "_io.FileIO":
		p, _ := pathArg(c, 0, "file", "filename")
		mode, ok := pathArg(c, 1, "mode")
		w.op(c, openKind(mode, ok), p, q)
	case "os.open", "os.truncate", "os.chmod", "os.chown", "os.lchown", "os.utime", "os.mkfifo", "os.mknod",
		"os.makedirs", "os.mkdir", "pandas.ExcelWriter", "numpy.save", "numpy.savetxt", "numpy.savez",
		"numpy.savez_compressed", "shutil.make_archive", "shutil.chown", "zipfile.ZipFile", "tarfile.open":
		p, _ := pathArg(c, 0, "path", "name", "file", "fname", "base_name", "excel_writer")
		kind := FileWrite
		if q == "zipfile.ZipFile" || q == "tarfile.open" {
			mode, ok := pathArg(c, 1, "mode")
			kind = openKind(mode, ok)
		}
		w.op(c, kind, p, q)
	case "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "shutil.rmtree":
		p, _ := pathArg(c, 0, "path", "name")
		w.op(c, FileDelete, p, q)
	case "os.rename", "os.replace", "os.renames", "shutil.move":
		src, _ := pathArg(c, 0, "src", "old")
		dst, _ := pathArg(c, 1, "dst", "new")
		w.op(c, FileDelete, src, q)
		w.op(c, FileWrite, dst, q)
	case "shutil.unpack_archive":
		src, _ := pathArg(c, 0, "filename")
		dst, ok := pathArg(c, 1, "extract_dir")
		if !ok {
			dst = unknown // the working directory
		}
		w.op(c, FileRead, src, q)
		w.op(c, FileWrite, dst, q)
	case "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "os.link", "os.symlink":
		src, _ := pathArg(c, 0, "src")
		dst, _ := pathArg(c, 1, "dst")
		w.op(c, FileRead, src, q)
		w.op(c, FileWrite, dst, q)
	case "openpyxl.load_workbook", "openpyxl.reader.excel.load_workbook", "pandas.ExcelFile",
		"numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "glob.glob", "glob.iglob",
		"os.listdir", "os.scandir", "os.walk", "csv.reader", "json.load":
		if q == "csv.reader" || q == "json.load" {
			return true // they take an open file, already recorded
		}
		p, _ := pathArg(c, 0, "filename", "file", "fname", "pathname", "path", "top", "io")
		w.op(c, FileRead, p, q)
	default:
		if strings.HasPrefix(q, "pandas.read_") {
			p, _ := pathArg(c, 0, "filepath_or_buffer", "io", "path", "path_or_buf", "path_or_buffer")
			w.op(c, FileRead, p, q)
			return true
		}
		return false
	}
	return true
}
