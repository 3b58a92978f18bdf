// socket.io's own packet parser, with one more check: an ack id must be a safe integer. The stock
// decoder reads any run of digits as a Number, so `4299999999999999999999999[…]` asks for an ack
// whose id prints as `4.3e+23`: the answer would be a packet no client can parse. A packet that
// fails to decode closes only its own connection, as every other malformed packet does.
import { Decoder, Encoder } from 'socket.io-parser';

interface DecodedPacket {
  id?: number;
}

class AttuneDecoder extends Decoder {
  constructor() {
    super();
    const decodeString = (this as unknown as { decodeString(str: string): DecodedPacket }).decodeString.bind(this);
    (this as unknown as { decodeString(str: string): DecodedPacket }).decodeString = (str: string): DecodedPacket => {
      const packet = decodeString(str);
      if (packet.id !== undefined && !(Number.isSafeInteger(packet.id) && packet.id >= 0)) throw new Error('invalid packet id');
      return packet;
    };
  }
}

export const socketParser = { Encoder, Decoder: AttuneDecoder };
