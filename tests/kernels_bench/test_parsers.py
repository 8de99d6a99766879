"""NCCL_DEBUG=INFO and perftest output parsers, on recorded text in the tools' documented
formats (NCCL's channel/transport lines; perftest 4.5's BW table and its older MB/sec and
--report_gbits headers)."""

from __future__ import annotations

import pytest

from kernels_bench.nccl_log import parse_nccl_log
from kernels_bench.perftest import parse_perftest, port_rate_bytes_per_s

NCCL_NVLINK = """\
h200:4021:4021 [0] NCCL INFO Bootstrap : Using eth0:10.0.0.5<0>
h200:4021:4021 [0] NCCL INFO NCCL version 2.21.5+cuda12.4
h200:4021:4090 [0] NCCL INFO NET/IB : No device found.
h200:4021:4090 [0] NCCL INFO Using network Socket
h200:4021:4090 [0] NCCL INFO NVLS multicast support is not available on dev 0
h200:4021:4090 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read
h200:4021:4090 [0] NCCL INFO Channel 01/0 : 0[0] -> 1[1] via P2P/CUMEM/read
h200:4021:4090 [0] NCCL INFO Channel 00/0 : 1[1] -> 0[0] via P2P/CUMEM/read
h200:4021:4090 [0] NCCL INFO Connected all rings
"""

NCCL_FORCED_NET = """\
n1:77:77 [0] NCCL INFO NCCL version 2.20.3+cuda12.3
n1:77:99 [0] NCCL INFO NCCL_P2P_DISABLE set by environment to 1.
n1:77:99 [0] NCCL INFO NCCL_SHM_DISABLE set by environment to 1.
n1:77:99 [0] NCCL INFO Using network IB
n1:77:99 [0] NCCL INFO Channel 00/0 : 1[1] -> 0[0] [receive] via NET/IB/0/GDRDMA
n1:77:99 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] [send] via NET/IB/0/GDRDMA
n1:77:99 [0] NCCL INFO Channel 01/0 : 0[0] -> 1[1] [send] via NET/IB/1
n1:77:99 [0] NCCL INFO Channel 00/0 : 0[0] -> 2[2] via SHM/direct/direct
"""


def test_nccl_nvlink_log():
    t = parse_nccl_log(NCCL_NVLINK.splitlines())
    assert t.version == "2.21.5+cuda12.4"
    assert t.network == "Socket"
    assert t.transports == {"P2P": 3}
    assert t.summary == "P2P"
    assert t.nvls == "not available"


def test_nccl_forced_network_log():
    t = parse_nccl_log(NCCL_FORCED_NET.splitlines())
    assert t.network == "IB"
    assert t.transports == {"NET/IB": 3, "SHM": 1}
    assert t.summary == "NET/IB+SHM"


def test_nccl_log_without_channels():
    t = parse_nccl_log(["hello", "NCCL WARN something"])
    assert (t.transports, t.summary, t.version) == ({}, "", "")


PERFTEST_45 = """\
---------------------------------------------------------------------------------------
                    RDMA_Write BW Test
 Dual-port       : OFF		Device         : mlx5_0
 Number of qps   : 1		Transport type : IB
 Connection type : RC		Using SRQ      : OFF
 TX depth        : 128
 Mtu             : 4096[B]
 Link type       : IB
---------------------------------------------------------------------------------------
 local address: LID 0x01 QPN 0x0066 PSN 0xdcb546 RKey 0x1fffbd VAddr 0x007255bb410000
 remote address: LID 0x01 QPN 0x0067 PSN 0xfd3206 RKey 0x2000be VAddr 0x007e0751410000
---------------------------------------------------------------------------------------
 #bytes     #iterations    BW peak[MiB/sec]    BW average[MiB/sec]   MsgRate[Mpps]
Conflicting CPU frequency values detected: 1846.550000 != 2596.396000. CPU Frequency is not max.
 65536      5000             14954.91            14948.67                    0.239179
 131072     5000             23000.50            22990.25                    0.183922
---------------------------------------------------------------------------------------
"""

PERFTEST_GBITS = """\
 Link type       : Ethernet
 #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]
 65536      5000             97.52              97.48                0.185939
"""


def test_perftest_mib_table():
    r = parse_perftest(PERFTEST_45)
    assert (r.unit, r.link_type, r.device) == ("MiB", "IB", "mlx5_0")
    assert [x.size_bytes for x in r.rows] == [65536, 131072]
    first = r.rows[0]
    assert first.iterations == 5000
    assert first.average_bytes_per_s == pytest.approx(14948.67 * 1048576)
    assert first.peak_bytes_per_s == pytest.approx(14954.91 * 1048576)
    assert first.msg_rate_per_s == pytest.approx(239179.0)


def test_perftest_gbits_table():
    r = parse_perftest(PERFTEST_GBITS)
    assert r.unit == "Gb"
    assert r.link_type == "Ethernet"
    assert r.rows[0].average_bytes_per_s == pytest.approx(97.48e9 / 8)


def test_perftest_old_mb_header_is_mib():
    text = PERFTEST_45.replace("[MiB/sec]", "[MB/sec]")
    assert parse_perftest(text).rows[0].average_bytes_per_s == pytest.approx(
        14948.67 * 1048576)


def test_perftest_without_table_is_one_error():
    with pytest.raises(ValueError, match="no bandwidth table"):
        parse_perftest("Couldn't connect to 10.0.0.1:18515\n")


def test_port_rate_from_sysfs(tmp_path):
    port = tmp_path / "mlx5_0" / "ports" / "1"
    port.mkdir(parents=True)
    (port / "rate").write_text("400 Gb/sec (4X NDR)\n")
    assert port_rate_bytes_per_s("mlx5_0", root=tmp_path) == 50e9
    assert port_rate_bytes_per_s("mlx5_9", root=tmp_path) is None
