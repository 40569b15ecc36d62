// The official `openai` Node SDK used as a newcomer would, against the gateway at RAYGATE_URL.
// `node sdk.mjs <command> <json args>` prints one JSON object; tests/newcomer/test_node_sdk.py checks it.
//   embeddings {model, input}  the SDK's default call (base64 on the wire, decoded by the SDK), an
//                              explicit float call and the raw base64 strings of an explicit base64 call
//   agent {model}              runTools (non-streamed and streamed): tool call -> tool result -> answer
//   json {model}               json_object and json_schema answers, non-streamed and streamed
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.RAYGATE_URL, apiKey: process.env.RAYGATE_KEY || 'none', maxRetries: 0 });
const [command, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || '{}');

const WEATHER_PARAMS = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const PERSON_SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['name', 'age', 'tags'],
  additionalProperties: false,
};

async function embeddings({ model, input }) {
  const byDefault = await client.embeddings.create({ model, input });
  const asFloat = await client.embeddings.create({ model, input, encoding_format: 'float' });
  const asBase64 = await client.embeddings.create({ model, input, encoding_format: 'base64' });
  return {
    default: byDefault.data.map((d) => Array.from(d.embedding)),
    float: asFloat.data.map((d) => d.embedding),
    base64: asBase64.data.map((d) => d.embedding),
  };
}

async function agent({ model }) {
  const out = {};
  for (const stream of [false, true]) {
    const calls = [];
    const getWeather = (params) => {
      calls.push(params);
      return `sunny, 21 degrees in ${params.city}`;
    };
    const runner = client.chat.completions.runTools({
      model,
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', function: getWeather, parse: JSON.parse, parameters: WEATHER_PARAMS } }],
    });
    const answer = await runner.finalContent();
    const completion = await runner.finalChatCompletion();
    out[stream ? 'streamed' : 'plain'] = {
      calls,
      answer,
      roles: runner.messages.map((m) => m.role),
      finish: completion.choices[0].finish_reason,
      usage: await runner.totalUsage(),
    };
  }
  return out;
}

async function collect(stream) {
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) text += choice.delta.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, usage };
}

async function json({ model }) {
  const messages = [{ role: 'user', content: 'Describe a person.' }];
  const objectFormat = { type: 'json_object' };
  const schemaFormat = { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: PERSON_SCHEMA } };
  const plainObject = await client.chat.completions.create({ model, messages, response_format: objectFormat });
  const plainSchema = await client.chat.completions.create({ model, messages, response_format: schemaFormat });
  const streamOpts = { stream: true, stream_options: { include_usage: true } };
  const streamedObject = await collect(await client.chat.completions.create({ model, messages, response_format: objectFormat, ...streamOpts }));
  const streamedSchema = await collect(await client.chat.completions.create({ model, messages, response_format: schemaFormat, ...streamOpts }));
  return {
    schema: PERSON_SCHEMA,
    object: JSON.parse(plainObject.choices[0].message.content),
    person: JSON.parse(plainSchema.choices[0].message.content),
    streamed_object: JSON.parse(streamedObject.text),
    streamed_person: JSON.parse(streamedSchema.text),
    usage: [plainSchema.usage, streamedSchema.usage],
  };
}

const commands = { embeddings, agent, json };
try {
  console.log(JSON.stringify(await commands[command](args)));
} catch (err) {
  console.log(JSON.stringify({ error: { status: err.status ?? null, message: String(err.message || err) } }));
  process.exitCode = 1;
}
