"""A test DNS server, started by kernel tests in a namespace of their own: the upstream
that cnm's resolver forwards to. `ext.test` A is 198.51.100.N, N being the last
octet of the address the query came to (so a test sees which upstream answered);
every other name is NXDOMAIN. Usage: python3 dnsupstream.py ADDRESS [ADDRESS...]
"""

from __future__ import annotations

import selectors
import socket
import sys

import dns.message
import dns.rcode
import dns.rrset


def main(addresses: list[str]) -> None:
    selector = selectors.DefaultSelector()
    for address in addresses:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 53))
        selector.register(sock, selectors.EVENT_READ, address)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data, client = sock.recvfrom(4096)
            query = dns.message.from_wire(data)
            answer = dns.message.make_response(query)
            question = query.question[0]
            if question.name.to_text() == "ext.test." and question.rdtype == 1:
                octet = str(key.data).rsplit(".", 1)[1]
                answer.answer.append(dns.rrset.from_text(
                    question.name, 60, "IN", "A", f"198.51.100.{octet}"))
            else:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(answer.to_wire(), client)


if __name__ == "__main__":
    main(sys.argv[1:])
