// `generate` (one turn) and `chat` (a turn per line of stdin on one session).
#ifndef SUPRA_CLIENT_GENERATE_COMMAND_H_
#define SUPRA_CLIENT_GENERATE_COMMAND_H_

#include <vector>

#include "client/flags.h"
#include "client/invocation.h"

namespace supra::client {

const std::vector<FlagSpec>& GenerateFlagSpecs();
const std::vector<FlagSpec>& ChatFlagSpecs();

int RunGenerate(Invocation& invocation, const ParsedFlags& flags);
int RunChat(Invocation& invocation, const ParsedFlags& flags);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_GENERATE_COMMAND_H_
