"""Which detector reads raw 8-bit header text right: charset-normalizer against chardet, on header-sized text.

Run from the project root: ``.venv/bin/python bench/charset_detection.py [--failures]``.
A mail that puts raw 8-bit bytes in its headers and declares no charset leaves ticketgate to guess
(SPEC §1). Headers are short: a subject of a few words, a display name. This script encodes such
texts, written here in the languages whose mail arrives that way, in each charset their mail
clients used, and counts how often each detector gives back the very text. The chosen one is used
by gateway/mail/undeclared_charset.py; docs/performance/mail-reading.md has the figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

# (text, charsets its senders' clients write it in)
SAMPLES: list[tuple[str, tuple[str, ...]]] = [
    ("关于发票的问题", ("gb2312", "gbk", "gb18030")),
    ("付款失败，请帮忙", ("gb2312", "gbk")),
    ("账户无法登录", ("gb2312", "gbk")),
    ("王小明", ("gb2312", "gbk")),
    ("關於發票的問題", ("big5",)),
    ("帳戶無法登入", ("big5",)),
    ("請求書について", ("shift_jis", "euc_jp")),
    ("支払いができません", ("shift_jis", "euc_jp")),
    ("山田太郎", ("shift_jis", "euc_jp")),
    ("결제 오류 문의", ("euc_kr",)),
    ("계정에 로그인할 수 없습니다", ("euc_kr",)),
    ("김민수", ("euc_kr",)),
    ("Не проходит оплата картой", ("cp1251", "koi8_r")),
    ("Счёт за ноябрь", ("cp1251", "koi8_r")),
    ("Иван Петров", ("cp1251", "koi8_r")),
    ("Не можу увійти в обліковий запис", ("cp1251", "koi8_u")),
    ("Πρόβλημα πληρωμής", ("iso8859_7", "cp1253")),
    ("Problème de paiement", ("latin_1", "cp1252")),
    ("Facture du mois de décembre", ("latin_1", "cp1252")),
    ("Rechnung für März", ("latin_1", "cp1252")),
    ("Jürgen Müller", ("latin_1", "cp1252")),
    ("Pago rechazado en la tarjeta", ("latin_1", "cp1252")),
    ("Não consigo pagar a fatura", ("latin_1", "cp1252")),
    ("Błąd płatności kartą", ("iso8859_2", "cp1250")),
    ("Platba kartou neprošla", ("iso8859_2", "cp1250")),
    ("Ödeme alınmadı", ("iso8859_9", "cp1254")),
    ("תשלום נכשל", ("iso8859_8", "cp1255")),
    ("فشل الدفع", ("cp1256",)),
    ("ชำระเงินไม่สำเร็จ", ("tis_620",)),
]


def _charset_normalizer(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return str(best) if best is not None else None


def _chardet(data: bytes) -> str | None:
    import chardet

    found = chardet.detect(data)["encoding"]
    try:
        return data.decode(found) if found else None
    except (LookupError, UnicodeDecodeError):
        return None


DETECTORS: dict[str, Callable[[bytes], str | None]] = {
    "charset-normalizer": _charset_normalizer,
    "chardet": _chardet,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failures", action="store_true", help="list what each detector got wrong")
    args = parser.parse_args()
    cases = [(text, charset, text.encode(charset)) for text, charsets in SAMPLES for charset in charsets]
    print(f"{len(cases)} header texts, {len(SAMPLES)} distinct, in {len({c for _, c, _ in cases})} charsets")
    for name, detect in DETECTORS.items():
        started = time.perf_counter()
        results = [(text, charset, detect(data)) for text, charset, data in cases]
        elapsed = time.perf_counter() - started
        right = sum(found == text for text, _, found in results)
        print(
            f"{name:<20} {right}/{len(cases)} read back exactly ({right / len(cases):.0%}), "
            f"{elapsed / len(cases) * 1000:.1f} ms per text"
        )
        if args.failures:
            for text, charset, found in results:
                if found != text:
                    print(f"    {charset:<10} {text!r} -> {found!r}")


if __name__ == "__main__":
    main()
