import { connect } from 'node:net'
import { startTestServer } from '@test/server'

const server = await startTestServer({ users: { juliet: 'r0m30' } })
// A client gets server.service (xmpp://127.0.0.1:<port>), the domain 'localhost' and
// server.certs.ca as the CA to trust. Here a raw socket meets a fault instead:
server.faults = { closeAtStep: 'features', once: true } // the next session drops there

const socket = connect(server.port, server.host).resume()
socket.write(
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
)
const fault = await server.waitFor('fault')
console.log(fault.fault, fault.step) // closeAtStep features
console.log(server.sessions[0]?.sent.length) // 1: the server's stream header, then the drop
await server.close() // every session ends with system-shutdown; the port is free again
