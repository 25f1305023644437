"""The API over a real socket: garbage, limits, errors, concurrency. Raw ZeroMQ, no CLI."""
import threading
import unittest

from harness import DaemonTestCase, RawClient, message_pb2

PARSE_ERROR, INTERNAL_ERROR, VERSION_NOT_MANAGED, EMPTY_REQUEST, REJECTED = range(5)


class ApiTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.client = RawClient(self.daemon.endpoint)
        self.addCleanup(self.client.close)

    def state(self):
        nics = self.client.request(lambda r: setattr(r, "nic_details", ""))
        sgs = self.client.request(lambda r: setattr(r, "sg_details", ""))
        for nic in nics.nic_details:
            nic.ClearField("state")
        return nics.SerializeToString() + sgs.SerializeToString()

    def assert_serving(self):
        response = self.client.request(lambda r: setattr(r, "nic_list", True))
        self.assertTrue(response.status.status)

    def error_code(self, payload):
        answer = message_pb2.Messages()
        answer.ParseFromString(self.client.send_bytes(payload))
        self.assertEqual(len(answer.messages), 1)
        self.assertEqual(answer.messages[0].revision, 6)
        return answer.messages[0].error.code

    def test_garbage_bytes_get_a_parse_error_and_the_daemon_keeps_serving(self):
        for garbage in [b"\xff\xff\xff\xff\x0f", b"hello world", bytes(range(256)) * 4]:
            self.assertEqual(self.error_code(garbage), PARSE_ERROR)
        self.assert_serving()

    def test_empty_batch_unknown_revision_and_encryption(self):
        self.assertEqual(self.error_code(b""), EMPTY_REQUEST)
        messages = message_pb2.Messages()
        messages.messages.add().revision = 12345
        self.assertEqual(self.error_code(messages.SerializeToString()), VERSION_NOT_MANAGED)
        messages = message_pb2.Messages()
        messages.encrypted.aes256cbc_sha512 = b"\x00" * 64
        self.assertEqual(self.error_code(messages.SerializeToString()), REJECTED)
        messages = message_pb2.Messages()
        m = messages.messages.add()
        m.revision = 99
        m.message_0.request.nic_list = True
        answer = self.client.send(messages)
        self.assertTrue(answer.messages[0].message_0.response.status.status)

    def test_huge_message_is_rejected_without_exhausting_memory(self):
        huge = message_pb2.Messages()
        m = huge.messages.add()
        m.revision = 0
        m.message_0.message_id = "x" * (65 << 20)
        self.assertEqual(self.error_code(huge.SerializeToString()), REJECTED)
        self.assert_serving()

    def test_bad_fields_are_refused_with_what_and_where_and_change_nothing(self):
        self.client.request(lambda r: r.nic_add.MergeFrom(message_pb2.MessageV0.Nic(
            id="vnic_1", mac="52:54:00:00:00:01", vni=42, ip=["198.18.0.1"], security_group=["sg-web"])))
        self.client.request(lambda r: r.sg_rule_add.MergeFrom(message_pb2.MessageV0.SgRuleAddReq(
            sg_id="sg-web", rule=message_pb2.MessageV0.Rule(
                direction=0, protocol=6, port_start=80, port_end=80,
                cidr=message_pb2.MessageV0.Cidr(address="0.0.0.0", mask_size=0)))))
        before = self.state()
        Nic = message_pb2.MessageV0.Nic
        Rule = message_pb2.MessageV0.Rule
        Cidr = message_pb2.MessageV0.Cidr

        def rule_add(**fields):
            return lambda r: r.sg_rule_add.MergeFrom(
                message_pb2.MessageV0.SgRuleAddReq(sg_id="sg-web", rule=Rule(**fields)))

        cases = [
            (lambda r: r.nic_add.MergeFrom(Nic(id="vnic_3", mac="52:54:00:zz:34:02", vni=1)),
             "nic vnic_3: mac '52:54:00:zz:34:02' is not a MAC address"),
            (lambda r: r.nic_add.MergeFrom(Nic(id="vnic_1", mac="52:54:00:00:00:01", vni=1 << 24)),
             "nic vnic_1: vni 16777216 is not below 2^24"),
            (lambda r: r.nic_add.MergeFrom(Nic(id="vnic_1", mac="52:54:00:00:00:01", vni=42, ip=["198.18.0.300"])),
             "nic vnic_1: ip '198.18.0.300' is not an IPv4 or IPv6 address"),
            (lambda r: r.nic_add.MergeFrom(Nic(id="a/b", mac="52:54:00:00:00:01", vni=42)),
             "nic id 'a/b' holds a character outside A-Z a-z 0-9 _ - . :"),
            (lambda r: r.nic_update.MergeFrom(message_pb2.MessageV0.NicUpdateReq(id="vnic_1", ip=["x"])),
             "nic vnic_1: ip 'x' is not an IPv4 or IPv6 address"),
            (lambda r: r.nic_update.MergeFrom(message_pb2.MessageV0.NicUpdateReq(id="ghost")),
             "nic ghost: no such nic"),
            (rule_add(direction=0, protocol=6, port_start=100, port_end=99, cidr=Cidr(address="0.0.0.0", mask_size=0)),
             "port_start is greater than port_end"),
            (rule_add(direction=0, protocol=17, cidr=Cidr(address="0.0.0.0", mask_size=0)),
             "tcp and udp rules need port_start and port_end"),
            (rule_add(direction=0, protocol=6, port_start=1, port_end=70000, cidr=Cidr(address="0.0.0.0", mask_size=0)),
             "ports must be 0-65535"),
            (rule_add(direction=0, protocol=256, cidr=Cidr(address="0.0.0.0", mask_size=0)),
             "protocol 256 is not -1 (all) or 0-255"),
            (rule_add(direction=0, protocol=1, cidr=Cidr(address="2001:db8::", mask_size=129)),
             "mask size must be 0-128"),
            (rule_add(direction=0, protocol=1, cidr=Cidr(address="10.0.0", mask_size=8)),
             "'10.0.0' is not an IPv4 or IPv6 address"),
            (rule_add(direction=0, protocol=1, cidr=Cidr(address="10.0.0.0", mask_size=8), security_group="sg-x"),
             "set either a cidr or a security group, not both"),
            (rule_add(direction=0, protocol=1),
             "needs a cidr or a security group"),
            (rule_add(direction=0, protocol=1, port_start=8, port_end=8, cidr=Cidr(address="0.0.0.0", mask_size=0)),
             "ports only apply to tcp (6) and udp (17)"),
            (lambda r: r.sg_member_add.MergeFrom(message_pb2.MessageV0.SgMemberAddReq(sg_id="sg-web", member="not-an-ip")),
             "sg sg-web: member 'not-an-ip' is not an IPv4 or IPv6 address"),
            (lambda r: r.sg_add.MergeFrom(message_pb2.MessageV0.Sg(id="sg-web", member=["198.18.0.1", "bad"])),
             "sg sg-web: member 'bad'"),
            (lambda r: r.app_config.MergeFrom(message_pb2.MessageV0.AppConfigReq(log_level="verbose")),
             "log level 'verbose' is not one of"),
        ]
        for fill, expected in cases:
            response = self.client.request(fill)
            self.assertFalse(response.status.status, expected)
            self.assertIn(expected, response.status.error.description)
            self.assertEqual(self.state(), before, "a failed call changed the state: " + expected)
        self.assert_serving()

    def test_missing_required_field_is_answered_for_that_message_only(self):
        messages = message_pb2.Messages()
        bad = messages.messages.add()
        bad.revision = 0
        bad.message_0.request.nic_add.id = "vnic_9"  # no mac, no vni
        good = messages.messages.add()
        good.revision = 0
        good.message_0.request.sg_list = True
        answer = self.client.send(messages)
        self.assertEqual(len(answer.messages), 2)
        self.assertIn("missing required field(s)", answer.messages[0].message_0.response.status.error.description)
        self.assertTrue(answer.messages[1].message_0.response.status.status)

    def test_a_batch_is_not_atomic_each_message_applies_on_its_own(self):
        # README, API: a frame holding a good and a bad nic_add creates the good vnic.
        messages = message_pb2.Messages()
        for nic in (message_pb2.MessageV0.Nic(id="vnic_good", mac="52:54:00:00:00:0a", vni=42),
                    message_pb2.MessageV0.Nic(id="vnic_bad", mac="52:54:00:zz:00:0b", vni=42)):
            message = messages.messages.add()
            message.revision = 0
            message.message_0.request.nic_add.MergeFrom(nic)
        answer = self.client.send(messages)
        self.assertEqual(len(answer.messages), 2)
        self.assertTrue(answer.messages[0].message_0.response.status.status)
        self.assertFalse(answer.messages[1].message_0.response.status.status)
        self.assertEqual(self.ok("nic", "list").split(), ["vnic_good"])

    def test_several_clients_at_once(self):
        errors = []

        def worker(index):
            client = RawClient(self.daemon.endpoint)
            try:
                for n in range(40):
                    nic_id = "c%d-n%d" % (index, n)
                    response = client.request(lambda r: r.nic_add.MergeFrom(message_pb2.MessageV0.Nic(
                        id=nic_id, mac="52:54:00:00:%02x:%02x" % (index, n), vni=index)))
                    if not response.status.status:
                        errors.append(response.status.error.description)
            except Exception as error:  # reported below, with the others
                errors.append(repr(error))
            finally:
                client.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        listed = self.client.request(lambda r: setattr(r, "nic_list", True)).nic_list
        self.assertEqual(len(listed), 6 * 40)
        self.assertEqual(list(listed), sorted(listed))

    def test_each_client_gets_its_own_answers_when_requests_are_answered_together(self):
        """Requests that wait together are answered together (one journal sync for all): each
        answer must still reach the client that asked, REQ and DEALER clients alike."""
        import zmq
        context = zmq.Context()
        self.addCleanup(context.term)
        clients = []
        for index in range(12):
            kind = zmq.REQ if index % 3 else zmq.DEALER
            sock = context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.daemon.endpoint)
            self.addCleanup(sock.close)
            clients.append(sock)

        def request(index, n):
            messages = message_pb2.Messages()
            for part in range(2):
                message = messages.messages.add()
                message.revision = 0
                message.message_0.message_id = "c%d-n%d-%d" % (index, n, part)
                message.message_0.request.nic_add.MergeFrom(message_pb2.MessageV0.Nic(
                    id="c%d-n%d-%d" % (index, n, part), mac="52:54:00:%02x:%02x:%02x" % (index, n, part), vni=7))
            return messages.SerializeToString()

        rounds = 30
        for n in range(rounds):
            # Everyone sends before anyone reads, so the daemon finds them waiting together. A
            # DEALER client sends the empty delimiter a REQ socket adds, or leaves it out.
            for index, sock in enumerate(clients):
                if sock.type == zmq.REQ:
                    sock.send(request(index, n))
                elif index % 2:
                    sock.send_multipart([b"", request(index, n)])
                else:
                    sock.send(request(index, n))
            for index, sock in enumerate(clients):
                self.assertTrue(sock.poll(10000), "client %d got no answer in round %d" % (index, n))
                frames = sock.recv_multipart()
                if sock.type == zmq.DEALER and index % 2:
                    self.assertEqual(frames[0], b"", "the delimiter comes back to a DEALER client")
                answer = message_pb2.Messages()
                answer.ParseFromString(frames[-1])
                ids = [m.message_0.message_id for m in answer.messages]
                self.assertEqual(ids, ["c%d-n%d-%d" % (index, n, part) for part in range(2)])
                self.assertTrue(all(m.message_0.response.status.status for m in answer.messages))
        listed = self.client.request(lambda r: setattr(r, "nic_list", True)).nic_list
        self.assertEqual(len(listed), 12 * rounds * 2)


if __name__ == "__main__":
    unittest.main()
