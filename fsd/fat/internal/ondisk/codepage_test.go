package ondisk

import (
	"os/exec"
	"testing"
)

// The code page tables agree with iconv (glibc's converters) byte for byte,
// and Encode inverts Decode.
func TestCodePagesAgainstIconv(t *testing.T) {
	if _, err := exec.LookPath("iconv"); err != nil {
		t.Skip("iconv not installed: the code page oracle needs glibc's iconv (libc-bin)")
	}
	high := make([]byte, 128)
	for i := range high {
		high[i] = byte(0x80 + i)
	}
	for _, cp := range []*CodePage{CodePage437, CodePage850} {
		cmd := exec.Command("iconv", "-f", "CP"+cp.Name(), "-t", "UTF-8")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { in.Write(high); in.Close() }()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("iconv CP%s: %v", cp.Name(), err)
		}
		if got := cp.DecodeString(high); got != string(out) {
			t.Errorf("CP%s:\n ours  %q\n iconv %q", cp.Name(), got, out)
		}
		for i := 0; i < 256; i++ {
			r := cp.Decode(byte(i))
			if b, ok := cp.Encode(r); !ok || b != byte(i) {
				t.Errorf("CP%s: Encode(Decode(%#02x)) = %#02x %v", cp.Name(), i, b, ok)
			}
		}
		if _, ok := cp.Encode('日'); ok {
			t.Errorf("CP%s encodes 日", cp.Name())
		}
	}
}
