package visits_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/visits"
)

func pngBytes(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAttachments(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		s.MaxAttachment = 1 << 20
		v := open(t, s, patient, doctor, time.Now())
		pic := pngBytes(t)

		a, err := s.Upload(ctx, patient, v.ID, bytes.NewReader(pic))
		if err != nil {
			t.Fatal(err)
		}
		sum := sm3.Sum(pic)
		if a.Kind != visits.KindImage || a.ContentType != "image/png" || a.Size != int64(len(pic)) || a.SM3 != hex.EncodeToString(sum[:]) {
			t.Fatalf("attachment %+v", a)
		}
		// Stored under its hash, once however often it is sent.
		if _, err := os.Stat(filepath.Join(s.Dir, a.SM3[:2], a.SM3)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Upload(ctx, patient, v.ID, bytes.NewReader(pic)); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(s.Dir, "*", "*"))
		if len(files) != 1 {
			t.Fatalf("files %v", files)
		}

		// The message refers to it; the kind must match, and it must be the
		// sender's own upload in this visit.
		_, err = s.Post(ctx, patient, v.ID, visits.MessageInput{Kind: visits.KindVoice, AttachmentID: a.ID})
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["attachment_id"] != "附件类型与消息类型不符" {
			t.Errorf("kind mismatch: %v", err)
		}
		w := open(t, s, patient, doctor, time.Now())
		_, err = s.Post(ctx, patient, w.ID, visits.MessageInput{Kind: visits.KindImage, AttachmentID: a.ID})
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["attachment_id"] != "附件不存在" {
			t.Errorf("another visit's attachment: %v", err)
		}
		m, err := s.Post(ctx, patient, v.ID, visits.MessageInput{Kind: visits.KindImage, AttachmentID: a.ID})
		if err != nil || m.AttachmentID != a.ID {
			t.Fatalf("post image: %v %+v", err, m)
		}

		// The visit's doctor reads it; nobody else.
		got, f, err := s.OpenAttachment(ctx, doctor, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(content, pic) || got.ContentType != "image/png" {
			t.Fatal("content differs")
		}
		for _, p := range []visits.Party{patient2, doctor2} {
			_, _, err := s.OpenAttachment(ctx, p, a.ID)
			refused(t, "attachment for "+p.ID, err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
		}
		_, _, err = s.OpenAttachment(ctx, doctor, "nope")
		refused(t, "unknown attachment", err, ihos.ENotFound, "附件不存在")
		_, err = s.Upload(ctx, patient2, v.ID, bytes.NewReader(pic))
		refused(t, "upload by another patient", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")

		// Voice formats phones record, sniffed from the content.
		amr := append([]byte("#!AMR\n"), bytes.Repeat([]byte{0x3c, 0x55}, 50)...)
		if a, err := s.Upload(ctx, patient, v.ID, bytes.NewReader(amr)); err != nil || a.Kind != visits.KindVoice || a.ContentType != "audio/amr" {
			t.Errorf("amr: %v %+v", err, a)
		}
		// Chrome records voice as Opus in WebM: the EBML header with DocType webm.
		webm := append([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84}, []byte("webm")...)
		webm = append(webm, bytes.Repeat([]byte{0}, 64)...)
		if a, err := s.Upload(ctx, patient, v.ID, bytes.NewReader(webm)); err != nil || a.Kind != visits.KindVoice || a.ContentType != "audio/webm" {
			t.Errorf("webm: %v %+v", err, a)
		}

		// Refused: too large, empty, not an image or voice (whatever the
		// client claims), and after the visit ended.
		big := append(append([]byte{}, pic...), make([]byte, 1<<20)...)
		_, err = s.Upload(ctx, patient, v.ID, bytes.NewReader(big))
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["file"] != "文件不能超过 1 MB" {
			t.Errorf("too large: %v", err)
		}
		_, err = s.Upload(ctx, patient, v.ID, strings.NewReader(""))
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["file"] != "文件是空的" {
			t.Errorf("empty: %v", err)
		}
		_, err = s.Upload(ctx, patient, v.ID, strings.NewReader("<html><script>alert(1)</script></html>"))
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || !strings.HasPrefix(e.Fields["file"], "只能上传图片") {
			t.Errorf("html: %v", err)
		}
		s.Accept(ctx, doctor, v.ID)
		s.End(ctx, doctor, v.ID, "")
		_, err = s.Upload(ctx, patient, v.ID, bytes.NewReader(pic))
		refused(t, "upload after end", err, ihos.EConflict, "问诊已结束，不能再发送消息")
		// Still readable after the end: records are kept.
		if _, f, err := s.OpenAttachment(ctx, patient, a.ID); err != nil {
			t.Fatal(err)
		} else {
			f.Close()
		}
	})
}
