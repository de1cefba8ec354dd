"""Chinese phrases → what was understood, without a kernel: each request is read through lexicon/zh.json and its
slots are those of the English extractors. Rows were written from reading each request as a Chinese-speaking
learner means it; negatives say what must NOT be filled (no process filter from an ordinary word, no action from
a question about one), and requests with words the lexicon does not know must report them."""

from __future__ import annotations

import pytest
from test_phrases import check_slots

from gpttrace_py.planning.language import read

ROWS: list[tuple[str, dict]] = [
    ("跟踪 ls 打开的文件", {"comm": "ls", "shape": "events"}),
    ("监控 nginx 打开的文件", {"comm": "nginx"}),
    ("显示 sshd 打开了哪些文件", {"comm": "sshd"}),
    ("统计 dd 的 read 调用", {"comm": "dd", "shape": "count"}),
    ("跟踪 curl 的 TCP 连接", {"comm": "curl"}),
    ("跟踪 pid 1234 的系统调用", {"pid": 1234, "comm": None}),
    ("跟踪进程号 42 打开的文件", {"pid": 42}),
    ("跟踪 cat 或 head 打开的文件", {"comms": ["cat", "head"]}),
    ("统计 nginx 和 redis 的写入", {"comms": ["nginx", "redis"]}),
    ("跟踪除了 cat 以外的进程打开的文件", {"comm": None, "not": ["cat"]}),
    ("跟踪文件打开，不包括 systemd", {"not": ["systemd"]}),
    ("统计系统调用，排除 sshd 和 cron", {"not": ["sshd", "cron"]}),
    ("统计每个进程读取的字节数", {"shape": "sum", "comm": None}),
    ("统计每个进程写入的字节数", {"shape": "sum"}),
    ("每秒统计系统调用次数", {"interval": 1, "shape": "count"}),
    ("每 5 秒统计一次系统调用", {"interval": 5}),
    ("统计系统调用，持续 10 秒", {"duration": 10.0}),
    ("跟踪文件打开 5 秒", {"duration": None}),
    ("运行 3 秒，统计缺页异常", {"duration": 3.0}),
    ("运行队列延迟直方图，单位微秒", {"unit": "us", "shape": "latency"}),
    ("磁盘 I/O 延迟直方图，以毫秒为单位", {"unit": "ms", "shape": "latency"}),
    ("read 系统调用的延迟，单位纳秒", {"unit": "ns"}),
    ("读取大小的直方图", {"shape": "hist"}),
    ("写入大小的分布", {"shape": "hist"}),
    ("fsync 耗时多久", {"shape": "latency"}),
    ("按进程统计缺页异常次数", {"shape": "count", "comm": None}),
    ("按 CPU 统计上下文切换", {"shape": "count"}),
    ("哪个进程在删除文件？", {"comm": None, "shape": "count"}),
    ("哪些进程打开的文件最多", {"comm": None, "shape": "count"}),
    ("显示进程退出和退出码", {"comm": None}),
    ("跟踪 TCP 状态变化", {"comm": None, "shape": "events"}),
    ("跟踪新进程的启动", {"comm": None}),
    ("显示失败的文件打开", {"errors": True}),
    ("统计出错的系统调用", {"errors": True}),
    ("跟踪打开 /etc/passwd 的进程", {"path": "/etc/passwd", "comm": None}),
    ("跟踪 /tmp 下创建的文件", {"path": "/tmp"}),
    ("跟踪到 443 端口的连接", {"port": None}),
    ("跟踪端口 443 的连接", {"port": 443}),
    ("谁发送了 SIGKILL", {"signal": 9}),
    ("显示 chmod 调用，权限以八进制显示", {"comm": None}),
    ("统计前 10 个最忙的进程", {"top": 10}),
    ("内核栈采样，49 Hz", {"shape": "profile"}),
    ("对 CPU 使用做剖析", {"shape": "profile"}),
    ("跟踪大于 1 MB 的读取", {"size": (">", 1 << 20)}),
    ("统计每个进程的网络发送字节数", {"shape": "sum"}),
    ("统计丢包原因", {"action": None}),
    ("跟踪被杀死的进程", {"action": None}),
    ("谁在杀死进程", {"action": None}),
    ("阻塞 I/O 的延迟直方图", {"action": None}),
    # actions: refused, never traced
    ("杀死所有打开 /etc/shadow 的进程", {"action": "kill"}),
    ("阻止所有到 23 端口的出站连接", {"action": "block"}),
    ("拦截所有访问 /etc/shadow 的进程", {"action": "block"}),
    ("禁止 curl 的网络连接", {"action": None}),
    ("限制 dd 的磁盘 I/O", {"action": None}),
    ("请杀死 fork 炸弹进程", {"action": "kill"}),
    ("修改返回值 openat", {"action": "override"}),
    # ordinary words that must not become process names
    ("按文件名统计打开次数", {"comm": None}),
    ("按原因统计丢包", {"comm": None}),
    ("按信号统计信号发送", {"comm": None}),
    ("按磁盘统计块设备 I/O", {"comm": None}),
    ("按系统调用统计次数", {"comm": None}),
    ("按用户统计进程启动", {"comm": None}),
    ("统计每个线程的上下文切换", {"comm": None}),
    ("按返回值统计 read 调用", {"comm": None}),
]

UNKNOWN: list[tuple[str, list[str]]] = [
    ("监控量子纠缠的文件", ["量子纠缠"]),
    ("跟踪光合作用", ["光合作用"]),
    ("统计 nginx 的猫咪", ["猫咪"]),
]

def test_the_table_is_large_and_has_negatives():
    assert len(ROWS) >= 60
    assert len([r for r in ROWS if None in r[1].values()]) >= 20


@pytest.mark.parametrize("request_text,expected", ROWS, ids=[r[0] for r in ROWS])
def test_phrase(request_text: str, expected: dict) -> None:
    reading = read(request_text)
    assert reading.language == "zh"
    assert not reading.unknown, f"{request_text!r}: the lexicon does not know {reading.unknown}"
    check_slots(request_text, reading.text, expected)


@pytest.mark.parametrize("request_text,unknown", UNKNOWN)
def test_words_the_lexicon_does_not_know_are_kept(request_text: str, unknown: list[str]) -> None:
    assert read(request_text).unknown == unknown


def test_english_words_and_names_pass_through():
    reading = read("统计 dd 的 read 调用，持续 3 秒")
    assert reading.text == "tally dd's read calls, for 3 seconds"


@pytest.mark.parametrize("request_text,expected", [
    ("追蹤 ls 開啟的檔案", {"comm": "ls"}),
    ("統計每個進程讀取的位元組數", {"shape": "sum"}),
    ("按進程統計缺頁異常次數", {"shape": "count", "comm": None}),
    ("顯示失敗的系統呼叫", {"errors": True}),
])
def test_traditional_characters_read_the_same(request_text: str, expected: dict) -> None:
    test_phrase(request_text, expected)
